"""Dispatch and stopping: a process that stops drains its runs, refuses new ones, hands back what it took."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import ApplicationCommunicator
from django.utils import timezone

from ecsportal.runs import dispatcher, lifecycle
from ecsportal.runs.models import RunChunk, RunStatus
from ecsportal.runs.selectors import run_stored_bytes
from ecsportal.runs.worker import RunsWorker
from tests.runs.lab import stored_run, wait_ended


@pytest.fixture(autouse=True)
def serving():
    yield
    dispatcher.reset_stopping()


async def _stored(run_pk: int) -> bytes:
    rows = await database_sync_to_async(list)(RunChunk.objects.filter(run_id=run_pk).order_by("seq"))
    return b"".join(bytes(row.data) for row in rows)


async def _until_output(run_pk: int, text: bytes, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while text not in await _stored(run_pk):
        assert loop.time() < deadline, f"run {run_pk}: no {text!r} after {timeout} s"
        await asyncio.sleep(0.05)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_draining_process_lets_a_run_finish_within_the_deadline(cast, run_as):
    run = await run_as(cast.operator, "sleep 1; echo finished")

    cut = await dispatcher.drain(who="test process", deadline=30)

    run = await wait_ended(run.pk)
    assert cut == []
    assert (run.status, run.exit_code) == (RunStatus.SUCCEEDED, 0)
    assert b"finished" in await _stored(run.pk)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_run_past_the_drain_deadline_ends_saying_its_process_stopped_with_its_output_stored(cast, run_as):
    run = await run_as(cast.operator, "echo first; for i in $(seq 1 300); do echo line $i; sleep 0.05; done")
    await _until_output(run.pk, b"line 3\r\n")

    cut = await dispatcher.drain(who="test process", deadline=0.3)

    run = await wait_ended(run.pk)
    transcript = await _stored(run.pk)
    assert cut == [run.pk]
    assert run.status == RunStatus.ERROR
    assert run.end_reason.startswith("Ended: the test process running this command was stopped"), run.end_reason
    assert "within the 0.3 s" in run.end_reason
    assert run.bytes_out == len(transcript)  # the byte count is the stored transcript's
    assert transcript.startswith(b"first\r\nline 1\r\n") and b"line 300" not in transcript


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_stopping_web_server_refuses_a_new_in_process_run_saying_why(cast, run_as):
    await dispatcher.drain(who="test process", deadline=0)

    run = await run_as(cast.operator, "echo never")

    run = await wait_ended(run.pk)
    assert run.status == RunStatus.ERROR
    assert run.end_reason.startswith("Not run: this server was stopping"), run.end_reason
    assert dispatcher.local_task(run.pk) is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_stopping_worker_hands_a_run_it_took_back_to_the_queue(cast, fast_runs):
    fast_runs.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    await dispatcher.drain(who="test worker", deadline=0)
    consumer = ApplicationCommunicator(
        dispatcher.RunWorkerConsumer.as_asgi(), {"type": "channel", "channel": dispatcher.RUNS_CHANNEL}
    )
    message = {"type": "run.execute", "run_pk": 4242}

    await consumer.send_input(message)

    back = await asyncio.wait_for(get_channel_layer().receive(dispatcher.RUNS_CHANNEL), 5)
    assert back == message  # for another worker to take
    assert dispatcher.local_task(4242) is None
    consumer.stop()


class _FlakyLayer:
    """A channel layer whose first receives fail as they do while Redis restarts."""

    def __init__(self, failures: int, message: dict) -> None:
        self.failures = failures
        self.message = message

    async def receive(self, channel: str) -> dict:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        message, self.message = self.message, None
        if message is None:
            await asyncio.sleep(3600)
        return message


@pytest.mark.asyncio
async def test_the_runs_worker_listens_again_after_the_broker_fails_instead_of_exiting(monkeypatch):
    monkeypatch.setattr("ecsportal.runs.worker.FIRST_RETRY", 0.01)
    received: list[dict] = []

    async def application(scope, receive, send):
        received.append(await receive())

    worker = RunsWorker(
        application=application,
        channels=["ecsportal-runs"],
        channel_layer=_FlakyLayer(3, {"type": "run.execute", "run_pk": 7}),
    )
    listening = asyncio.create_task(worker.listener("ecsportal-runs"))
    try:
        for _ in range(200):
            if received:
                break
            await asyncio.sleep(0.01)
        assert not listening.done()  # channels' own listener ends (and the process with it) at the first error
        assert received == [{"type": "run.execute", "run_pk": 7}]
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)


@pytest.mark.django_db
def test_the_sweep_ends_a_lost_run_with_the_byte_count_of_its_stored_transcript(cast):
    run = stored_run(
        account=cast.staging,
        requested_by=cast.operator,
        status=RunStatus.RUNNING,
        heartbeat_at=timezone.now() - timedelta(minutes=5),
        bytes_out=10,  # the last heartbeat's count, a round behind
    )
    RunChunk.objects.create(run=run, seq=1, offset=0, data=b"0123456789")
    RunChunk.objects.create(run=run, seq=2, offset=1, data=b"stored after the last heartbeat")

    assert lifecycle.runs_end_stale(stale_after=60) == 1

    run.refresh_from_db()
    assert run.status == RunStatus.ERROR and run.end_reason.startswith("Runner lost")
    assert run.bytes_out == 10 + len(b"stored after the last heartbeat") == run_stored_bytes(run_pk=run.pk)
