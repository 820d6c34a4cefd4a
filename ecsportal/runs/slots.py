"""Concurrent runs per deployment and per user: past either limit a run waits, QUEUED, for a slot.

`ECSPORTAL_RUNS_MAX_ACTIVE` (the whole deployment) and `ECSPORTAL_RUNS_MAX_ACTIVE_PER_USER`
(the runs one user requested) count the runs that are CONNECTING or RUNNING. A runner takes a
slot with `run_take_slot`: one transaction that counts and moves the run QUEUED → CONNECTING
(`lifecycle.run_connecting`), serialized on PostgreSQL by a transaction-scoped advisory lock so
that two processes cannot both take the last slot (SQLite serializes writers anyway). A run that
finds no slot stays QUEUED, its heartbeat written (the sweep ends a QUEUED run only when nobody
holds it), and its runner asks again shortly; the run page says why it waits
(`run_waiting_reason`). Waiting runs are not started in a strict order: whichever runner asks
first after a slot frees takes it. 0 turns a limit off.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ecsportal.runs.lifecycle import run_connecting
from ecsportal.runs.models import Run, RunStatus

RUNNING = (RunStatus.CONNECTING, RunStatus.RUNNING)
LOCK_KEY = 0x65637370  # "ecsp": the advisory lock that serializes slot takers (PostgreSQL)
TAKEN, GONE = "taken", "gone"


def _limits() -> tuple[int, int]:
    return int(settings.ECSPORTAL_RUNS_MAX_ACTIVE), int(settings.ECSPORTAL_RUNS_MAX_ACTIVE_PER_USER)


def run_waiting_reason(*, run: Run) -> str:
    """Why a QUEUED run has not started, in words ("" when a slot is free: it is about to)."""
    most, most_per_user = _limits()
    running = Run.objects.filter(status__in=RUNNING)
    ahead = Run.objects.filter(status=RunStatus.QUEUED, pk__lt=run.pk)
    if most:
        count = running.count()
        if count >= most:
            waiting = ahead.count()
            return (
                f"Waiting for a free slot: {count} runs are running, the most this portal runs at once "
                f"(ECSPORTAL_RUNS_MAX_ACTIVE = {most}); {waiting} queued before this one. "
                "It starts by itself when one ends."
            )
    if most_per_user:
        count = running.filter(requested_by_id=run.requested_by_id).count()
        if count >= most_per_user:
            return (
                f"Waiting for a free slot: {run.requested_by.get_username()} has {count} runs running, the most "
                f"one user may run at once (ECSPORTAL_RUNS_MAX_ACTIVE_PER_USER = {most_per_user}). "
                "It starts by itself when one of them ends."
            )
    return ""


def run_take_slot(*, run_pk: int, runner_id: str) -> str:
    """QUEUED → CONNECTING when a slot is free: `TAKEN`; `GONE` when the run is no longer QUEUED
    (cancelled meanwhile); otherwise why it waits, with its heartbeat written."""
    if _limits() == (0, 0):
        return TAKEN if run_connecting(run_pk=run_pk, runner_id=runner_id) else GONE
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        run = Run.objects.select_related("requested_by").filter(pk=run_pk, status=RunStatus.QUEUED).first()
        if run is None:
            return GONE
        reason = run_waiting_reason(run=run)
        if reason:
            Run.objects.filter(pk=run_pk, status=RunStatus.QUEUED).update(heartbeat_at=timezone.now())
            return reason
        return TAKEN if run_connecting(run_pk=run_pk, runner_id=runner_id) else GONE
