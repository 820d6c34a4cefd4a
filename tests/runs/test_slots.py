"""Concurrent runs per deployment and per user (slots.py): past a limit a run waits, QUEUED, says
why on its page, and starts by itself when a slot frees; nothing is refused.

Real parts: moto's ExecuteCommand seam, the SSM agent emulator running the commands, the
database. A run holds its slot until a file the test creates appears, so "while A runs" is an
event, not a delay.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from ecsportal.runs.models import Run, RunStatus
from ecsportal.runs.slots import run_waiting_reason
from tests.runs.lab import wait_ended

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture
def gate():
    """A command that runs until `open()` is called: `gate.command`, `gate.open()`."""
    folder = Path(tempfile.mkdtemp(prefix="slots-"))
    flag = folder / "open"

    class Gate:
        command = f"echo holding; while [ ! -e {flag} ]; do sleep 0.05; done; echo released"

        @staticmethod
        def open() -> None:
            flag.touch()

    yield Gate
    flag.touch()


async def _status(pk: int) -> str:
    return (await sync_to_async(Run.objects.get)(pk=pk)).status


async def _until(check, what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.05)


async def _waiting_polled(pk: int) -> bool:
    """The run's runner has asked for a slot and been told to wait (it wrote the heartbeat)."""
    run = await sync_to_async(Run.objects.get)(pk=pk)
    return run.status == RunStatus.QUEUED and run.heartbeat_at is not None


async def test_past_the_deployment_limit_a_run_waits_says_why_and_starts_when_a_slot_frees(
    cast, run_as, gate, settings
):
    settings.ECSPORTAL_RUNS_MAX_ACTIVE = 1
    first = await run_as(cast.operator, gate.command)
    await _until(lambda: _is(first.pk, RunStatus.RUNNING), "the first run is running")
    second = await run_as(cast.approver, "echo second")
    await _until(lambda: _waiting_polled(second.pk), "the second run's runner was told to wait")

    run = await sync_to_async(Run.objects.select_related("requested_by").get)(pk=second.pk)
    reason = await sync_to_async(run_waiting_reason)(run=run)
    assert "Waiting for a free slot: 1 runs are running" in reason and "ECSPORTAL_RUNS_MAX_ACTIVE = 1" in reason
    page = await sync_to_async(_page)(cast.approver, second.pk)
    assert 'id="run-waiting"' in page and "Waiting for a free slot" in page

    gate.open()
    assert (await wait_ended(first.pk)).status == RunStatus.SUCCEEDED
    second_run = await wait_ended(second.pk)
    assert (second_run.status, second_run.exit_code) == (RunStatus.SUCCEEDED, 0)
    page = await sync_to_async(_page)(cast.approver, second.pk)
    assert 'id="run-waiting"' not in page


async def test_the_per_user_limit_holds_one_user_back_and_not_another(cast, run_as, gate, settings):
    settings.ECSPORTAL_RUNS_MAX_ACTIVE = 0
    settings.ECSPORTAL_RUNS_MAX_ACTIVE_PER_USER = 1
    holding = await run_as(cast.operator, gate.command)
    await _until(lambda: _is(holding.pk, RunStatus.RUNNING), "the operator's first run is running")
    held = await run_as(cast.operator, "echo mine")
    other = await run_as(cast.approver, "echo theirs")
    assert (await wait_ended(other.pk)).status == RunStatus.SUCCEEDED  # another user's run is not held
    await _until(lambda: _waiting_polled(held.pk), "the operator's second run waits")
    run = await sync_to_async(Run.objects.select_related("requested_by").get)(pk=held.pk)
    assert "operator has 1 runs running" in await sync_to_async(run_waiting_reason)(run=run)

    gate.open()
    assert (await wait_ended(held.pk)).status == RunStatus.SUCCEEDED


async def test_a_waiting_run_that_is_cancelled_ends_and_its_runner_lets_go(cast, run_as, gate, settings):
    from ecsportal.runs import dispatcher
    from ecsportal.runs.services import run_cancel

    settings.ECSPORTAL_RUNS_MAX_ACTIVE = 1
    holding = await run_as(cast.operator, gate.command)
    await _until(lambda: _is(holding.pk, RunStatus.RUNNING), "the first run is running")
    waiting = await run_as(cast.operator, "echo never")
    await _until(lambda: _waiting_polled(waiting.pk), "the second run waits")
    task = dispatcher.local_task(waiting.pk)
    assert task is not None

    await sync_to_async(run_cancel)(actor=cast.operator, run_pk=waiting.pk)
    await asyncio.wait_for(asyncio.shield(task), 10)  # the runner saw it end and let go
    assert (await wait_ended(waiting.pk)).status == RunStatus.CANCELLED
    gate.open()
    assert (await wait_ended(holding.pk)).status == RunStatus.SUCCEEDED


async def _is(pk: int, status: str) -> bool:
    return await _status(pk) == status


def _page(user, pk: int) -> str:
    client = Client()
    client.force_login(user)
    answer = client.get(f"/runs/{pk}/")
    assert answer.status_code == 200
    return answer.content.decode()


async def test_a_stopping_process_ends_a_run_that_waited_in_it_saying_why_and_lets_the_running_one_finish(
    cast, run_as, gate, settings
):
    from ecsportal.runs import dispatcher

    settings.ECSPORTAL_RUNS_MAX_ACTIVE = 1
    holding = await run_as(cast.operator, gate.command)
    await _until(lambda: _is(holding.pk, RunStatus.RUNNING), "the first run is running")
    waiting = await run_as(cast.operator, "echo never")
    await _until(lambda: _waiting_polled(waiting.pk), "the second run waits")
    try:
        draining = asyncio.ensure_future(dispatcher.drain(who="test process", deadline=30))
        ended = await wait_ended(waiting.pk)  # at once, not at the deadline: it never started
        assert ended.status == RunStatus.ERROR
        assert ended.end_reason.startswith("Not run: the server holding it while it waited for a free slot")
        gate.open()
        assert await draining == []
        assert (await wait_ended(holding.pk)).status == RunStatus.SUCCEEDED
    finally:
        dispatcher.reset_stopping()


async def test_a_stopping_worker_hands_a_run_that_waited_in_it_back_to_the_queue(cast, run_as, gate, settings):
    from channels.layers import get_channel_layer

    from ecsportal.runs import dispatcher

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.ECSPORTAL_RUNS_MAX_ACTIVE = 1
    holding = await run_as(cast.operator, gate.command)
    await _until(lambda: _is(holding.pk, RunStatus.RUNNING), "the first run is running")
    waiting = await run_as(cast.operator, "echo later")
    await _until(lambda: _waiting_polled(waiting.pk), "the second run waits")
    settings.ECSPORTAL_RUNNER_MODE = "worker"  # as a runs worker holds it
    try:
        await dispatcher.drain(who="test worker", deadline=0)
        back = await asyncio.wait_for(get_channel_layer().receive(dispatcher.RUNS_CHANNEL), 10)
        assert back == {"type": "run.execute", "run_pk": waiting.pk}  # for another worker to take
        assert await _status(waiting.pk) == RunStatus.QUEUED  # not ended: it never started
    finally:
        dispatcher.reset_stopping()
        gate.open()
