"""Leases: one process at a time runs a named job, whatever the number of processes.

`lease_take(name, ttl)` returns True when this process holds the lease for the next `ttl`
seconds: it renews its own lease, or takes one that has expired, in one conditional UPDATE

    UPDATE lease SET holder = me, expires_at = now + ttl WHERE name = … AND (holder = me OR expires_at < now)

and creates the row the first time (two processes creating it at once: the primary key lets
one INSERT in, the other sees an IntegrityError and does not hold it). Exactly one caller's
statement changes the row, on SQLite (writers serialised) and on PostgreSQL (the second UPDATE
re-reads the row the first one committed and no longer matches it).

Time is the processes' own clock: the deployment's hosts must agree to within a few seconds
(NTP), which is small against the TTLs used (twice a job's interval).
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from ecsportal.leases.models import Lease

PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_take(name: str, *, ttl: float, holder: str = PROCESS_ID, now: datetime | None = None) -> bool:
    """Hold `name` for `ttl` seconds from now (renewing, or taking an expired lease); False if another holds it."""
    now = now or timezone.now()
    expires = now + timedelta(seconds=ttl)
    if Lease.objects.filter(name=name, holder=holder).update(expires_at=expires):
        return True  # renewed (also after it lapsed, as long as nobody took it meanwhile)
    if Lease.objects.filter(name=name, expires_at__lt=now).update(holder=holder, expires_at=expires, taken_at=now):
        return True  # taken over from a holder that stopped renewing
    if Lease.objects.filter(name=name).exists():
        return False
    try:
        with transaction.atomic():
            Lease.objects.create(name=name, holder=holder, expires_at=expires, taken_at=now)
    except IntegrityError:
        return False  # another process created it first
    return True


def lease_release(name: str, *, holder: str = PROCESS_ID) -> bool:
    """Give the lease up now (a process stopping its job), so another process need not wait for it to expire."""
    return bool(Lease.objects.filter(name=name, holder=holder).update(expires_at=timezone.now() - timedelta(seconds=1)))


def lease_holder(name: str, *, now: datetime | None = None) -> str | None:
    """Who holds `name` now, or None when nobody does."""
    now = now or timezone.now()
    return Lease.objects.filter(name=name, expires_at__gte=now).values_list("holder", flat=True).first()
