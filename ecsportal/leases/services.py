"""Leases: one process at a time runs a named job, whatever the number of processes.

`lease_take(name, ttl)` returns True when this process holds the lease for the next `ttl`
seconds. Each step is one conditional UPDATE, so whoever changes the row first wins:

    renew:    UPDATE lease SET expires_at = now + ttl WHERE name = … AND holder = me
    take:     UPDATE lease SET holder = me, expires_at = now + ttl, taken_at = now
              WHERE name = … AND expires_at < now
    create:   INSERT (the first time; of two creators the primary key lets one in)

On SQLite writers are serialised; on PostgreSQL a second UPDATE waiting on the row re-reads
it once the first commits, finds it no longer matches (new holder, expiry in the future) and
changes nothing. A lapsed holder may renew as long as nobody has taken the lease meanwhile.

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

_ids: dict[int, str] = {}


def process_id() -> str:
    """This process's holder name, "<host>:<pid>:<random>" (a forked child gets a new one)."""
    pid = os.getpid()
    if pid not in _ids:
        _ids[pid] = f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}"
    return _ids[pid]


def lease_take(name: str, *, ttl: float, holder: str | None = None, now: datetime | None = None) -> bool:
    """Hold `name` for `ttl` seconds from now (renewing, or taking an expired lease); False if another holds it."""
    holder = holder or process_id()
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


def lease_release(name: str, *, holder: str | None = None) -> bool:
    """Give the lease up now (a process stopping its job), so another process need not wait for it to expire."""
    holder = holder or process_id()
    return bool(Lease.objects.filter(name=name, holder=holder).update(expires_at=timezone.now() - timedelta(seconds=1)))


def lease_holder(name: str, *, now: datetime | None = None) -> str | None:
    """Who holds `name` now, or None when nobody does."""
    now = now or timezone.now()
    return Lease.objects.filter(name=name, expires_at__gte=now).values_list("holder", flat=True).first()
