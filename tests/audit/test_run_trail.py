"""A run's life in the audit trail: requested, started (with AWS's session ID), cancelled, ended."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from ecsportal.audit.models import AuditEvent
from ecsportal.runs.models import RunStatus
from tests.runs.lab import wait_ended

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@database_sync_to_async
def _events(run_pk: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(details__run=run_pk).order_by("id"))


async def _wait_for(run_pk: int, action: str) -> None:
    for _ in range(300):
        if any(e.action == action for e in await _events(run_pk)):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {action} event for run {run_pk}")


async def test_a_cancelled_runs_every_step_is_recorded_in_order(cast, run_as):
    from ecsportal.runs.services import run_cancel

    run = await run_as(cast.operator, "echo started; sleep 30", source_ip="198.51.100.8")
    await _wait_for(run.pk, "run.started")
    await database_sync_to_async(run_cancel)(actor=cast.operator, run_pk=run.pk, source_ip="198.51.100.9")
    run = await wait_ended(run.pk)
    assert run.status == RunStatus.CANCELLED
    events = await _events(run.pk)
    assert [e.action for e in events] == ["run.requested", "run.started", "run.cancel", "run.ended"]
    requested, started, cancel, ended = events
    assert (requested.actor_id, requested.source_ip) == (cast.operator.pk, "198.51.100.8")
    assert started.actor_id == cast.operator.pk and started.details["session_id"]
    assert "token" not in str(started.details).lower()
    assert (cancel.actor_id, cancel.source_ip) == (cast.operator.pk, "198.51.100.9")
    assert ended.details["status"] == RunStatus.CANCELLED
    assert {e.account_pk for e in events} == {run.account_id}
