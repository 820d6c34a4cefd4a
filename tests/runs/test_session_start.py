"""Starting a session under load: what the runner tries again, and what it does not.

Many runs started at once meet AWS's rate limit on ExecuteCommand and an agent endpoint slow to
accept connections (`tests/benchmarks/scale.py` at 500 runs: data channels that did not open
within 10 s). The runner tries those again with backoff for ECSPORTAL_RUN_START_RETRY_SECONDS;
a data channel is opened again only when the failed attempt never sent the token. Real parts:
moto (the ExecuteCommand seam answers the throttling as AWS does, with its error code), the SSM
agent emulator, and a real socket that accepts connections and never answers the handshake.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from asgiref.sync import sync_to_async

from ecsportal.runs import runner
from ecsportal.runs.models import RunStatus
from ecsportal.ssm.client import SsmClient
from tests.runs.lab import wait_ended

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture
def quick_retries(monkeypatch, settings):
    monkeypatch.setattr(runner, "FIRST_RETRY", 0.05)
    monkeypatch.setattr(runner, "LAST_RETRY", 0.2)
    monkeypatch.setattr(runner, "OPEN_TIMEOUT", 0.5)
    settings.ECSPORTAL_RUN_START_RETRY_SECONDS = 20


@pytest.fixture
def throttled(monkeypatch):
    """ExecuteCommand answers ThrottlingException (as AWS does past its rate) the first `n` calls."""
    from ecsportal.aws import local

    real = local.answer_execute_command
    calls: list[str] = []
    limit = [0]

    def answer(ecs_client, request):
        calls.append("throttled" if len(calls) < limit[0] else "answered")
        if calls[-1] == "throttled":
            return local._error("ThrottlingException", "Rate exceeded")
        return real(ecs_client, request)

    monkeypatch.setattr(local, "answer_execute_command", answer)

    def set_limit(n: int) -> list[str]:
        limit[0] = n
        return calls

    return set_limit


async def test_a_throttled_execute_command_is_tried_again_until_it_is_answered(cast, run_as, throttled, quick_retries):
    calls = throttled(8)  # more than the SDK's own attempts (5)
    run = await wait_ended((await run_as(cast.operator, "echo ran")).pk)
    assert (run.status, run.exit_code) == (RunStatus.SUCCEEDED, 0)
    assert calls.count("throttled") == 8 and calls.count("answered") == 1


async def test_throttling_past_the_retry_time_ends_the_run_saying_so(cast, run_as, throttled, quick_retries, settings):
    settings.ECSPORTAL_RUN_START_RETRY_SECONDS = 0.5
    calls = throttled(10**6)
    run = await wait_ended((await run_as(cast.operator, "echo never")).pk)
    assert run.status == RunStatus.ERROR
    assert "throttled ExecuteCommand" in run.end_reason
    assert "answered" not in calls


class _Silent:
    """A TCP server that accepts connections and never answers: an overloaded endpoint whose
    WebSocket handshake times out before the client could send anything."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)  # the kernel completes the TCP handshake; nobody reads
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def opens(monkeypatch):
    """Every data-channel attempt the runner makes (its token too); `slow(n)` sends the first n
    attempts to a silent endpoint, `wrong_token()` spoils the token of every attempt."""
    silent = _Silent()
    attempts: list[tuple[str, str]] = []
    plan = {"slow": 0, "wrong_token": False}

    class Recorded(SsmClient):
        def __init__(self, url: str, token: str, **options) -> None:
            attempts.append((url, token))
            if len(attempts) <= plan["slow"]:
                url = f"ws://127.0.0.1:{silent.port}/v1/data-channel/slow?role=publish_subscribe"
            if plan["wrong_token"]:
                token = "not-the-token"
            super().__init__(url, token, **options)

    monkeypatch.setattr(runner, "SsmClient", Recorded)
    yield attempts, plan
    silent.close()


async def test_a_data_channel_that_did_not_open_before_the_token_is_opened_again(cast, run_as, opens, quick_retries):
    attempts, plan = opens
    plan["slow"] = 2
    run = await wait_ended((await run_as(cast.operator, "echo opened")).pk)
    assert (run.status, run.exit_code) == (RunStatus.SUCCEEDED, 0)
    assert len(attempts) == 3
    assert len(set(attempts)) == 1  # the same URL and token each time: the server saw none of them


async def test_a_data_channel_that_timed_out_past_the_retry_time_ends_the_run(
    cast, run_as, opens, quick_retries, settings
):
    attempts, plan = opens
    plan["slow"] = 10**6
    settings.ECSPORTAL_RUN_START_RETRY_SECONDS = 1.5
    run = await wait_ended((await run_as(cast.operator, "echo never")).pk)
    assert run.status == RunStatus.ERROR
    assert "could not open the data channel within 0.5 s" in run.end_reason
    assert len(attempts) >= 2


async def test_a_data_channel_that_refused_the_token_is_not_opened_again(cast, run_as, opens, quick_retries):
    attempts, plan = opens
    plan["wrong_token"] = True
    run = await wait_ended((await run_as(cast.operator, "echo never")).pk)
    assert run.status == RunStatus.ERROR
    assert len(attempts) == 1  # the server had the token: trying again could start the command twice


async def test_a_run_whose_session_is_slow_to_start_keeps_its_heartbeat_and_is_not_taken_for_lost(
    cast, run_as, monkeypatch
):
    """Under load ExecuteCommand can take a minute (its calls queue); the sweep must not end the
    run as "runner lost" meanwhile: its runner beats the heartbeat while CONNECTING."""
    import threading

    from ecsportal.aws import local
    from ecsportal.runs.lifecycle import runs_end_stale

    real = local.answer_execute_command
    entered, release = threading.Event(), threading.Event()

    def slow(ecs_client, request):
        entered.set()
        release.wait(60)
        return real(ecs_client, request)

    monkeypatch.setattr(local, "answer_execute_command", slow)
    run = await run_as(cast.operator, "echo started late")  # fast_runs: a heartbeat every 0.1 s
    await asyncio.to_thread(entered.wait, 30)
    await asyncio.sleep(4)  # longer than the staleness below: only a heartbeat keeps the run alive
    try:
        assert await sync_to_async(runs_end_stale)(stale_after=3) == 0
    finally:
        release.set()
    run = await wait_ended(run.pk)
    assert (run.status, run.exit_code) == (RunStatus.SUCCEEDED, 0)


async def test_more_runs_than_the_default_thread_pool_call_execute_command_at_once(cast, run_as, monkeypatch):
    """asyncio's default pool has cpu + 4 threads; the runners' AWS calls have a pool of their own
    (target.AWS_THREADS), so twelve ExecuteCommand calls are in flight together: each waits here
    until all twelve have arrived, which a six-thread pool could never let happen."""
    import threading

    from ecsportal.aws import local

    real = local.answer_execute_command
    together = threading.Barrier(12, timeout=60)

    def gathered(ecs_client, request):
        together.wait()
        return real(ecs_client, request)

    monkeypatch.setattr(local, "answer_execute_command", gathered)
    runs = [await run_as(cast.operator, f"echo run {i}") for i in range(12)]
    for run in runs:
        ended = await wait_ended(run.pk, timeout=90)
        assert (ended.status, ended.exit_code) == (RunStatus.SUCCEEDED, 0), ended.end_reason
