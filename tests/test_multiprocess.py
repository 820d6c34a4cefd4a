"""The scale-out configuration, for real: two daphne processes and one runs worker on PostgreSQL and Redis.

As subprocesses: `manage.py demo --aws-only` (moto, the SSM agent emulator, migrate and the
demo seed), daphne A, daphne B and `manage.py runsworker`, all in worker mode on
one PostgreSQL database and one Redis channel prefix. The database is one of the test's own,
created on the server DATABASE_URL names (pytest-django's `test_<name>` lives inside this
test process's transactions and connections, which the subprocesses could not share) and
seeded by the demo; the channel prefix is derived from ECSPORTAL_CHANNEL_PREFIX, so parallel
CI runs do not meet. Every subprocess is killed at teardown, even when a test fails.

Runs only under CI=true (.ci/run exports DATABASE_URL, REDIS_URL and ECSPORTAL_CHANNEL_PREFIX);
elsewhere it skips, saying how to run it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.deployment import Deployment, login, start_run, watch

STALE_SECONDS = 5  # ECSPORTAL_RUN_STALE_SECONDS in the processes
SWEEP_SECONDS = 1  # ECSPORTAL_RUN_SWEEP_SECONDS
HEARTBEAT_SECONDS = 0.5


def _needs_the_real_services() -> tuple[str, str, str]:
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if os.environ.get("CI") != "true":
        pytest.skip(
            "The multi-process test runs under CI=true only (.ci/run), against PostgreSQL and Redis: "
            "CI=true DATABASE_URL=postgres://… REDIS_URL=redis://… pytest tests/test_multiprocess.py"
        )
    if urlsplit(database_url).scheme not in ("postgres", "postgresql", "pgsql") or not redis_url.startswith("redis"):
        pytest.fail("Under CI=true the multi-process test needs DATABASE_URL=postgres://… and REDIS_URL=redis://….")
    return database_url, redis_url, os.environ.get("ECSPORTAL_CHANNEL_PREFIX", "ecsportal")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    database_url, redis_url, prefix = _needs_the_real_services()
    deployment = Deployment.start(
        workdir=tmp_path_factory.mktemp("multiprocess"),
        database_url=database_url,
        redis_url=redis_url,
        channel_prefix=f"{prefix}-mp{os.getpid()}",
        settings={
            "ECSPORTAL_RUN_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
            "ECSPORTAL_RUN_STALE_SECONDS": str(STALE_SECONDS),
            "ECSPORTAL_RUN_SWEEP_SECONDS": str(SWEEP_SECONDS),
            "ECSPORTAL_RUN_TASK_CHECK_SECONDS": "30",
        },
    )
    with deployment.serving(worker="runworker"):
        yield deployment


def _viewer(deployment: Deployment, run_pk: int, **options):
    """A coroutine watching run `run_pk` from daphne B, logged in there as the viewer."""
    session = login(deployment.http("daphne-b"), "viewer")
    cookie = f"sessionid={session.cookies['sessionid']}"
    return watch(deployment.ws("daphne-b"), deployment.http("daphne-b"), cookie, run_pk, **options)


# What the command prints, and what reaches a viewer: the terminal turns each \n into \r\n.
# The quiet 6 s in the middle is longer than the channel layer's 5 s blocking reads: a viewer of
# a quiet run must stay connected (redis-py 8's default socket timeout used to cut it with 1011).
COMMAND = "sleep 1; printf 'caf\\303\\251 \\033[1mbold\\033[0m\\n'; sleep 6; seq 1 20000"
EXPECTED = "café \x1b[1mbold\x1b[0m\r\n".encode() + b"".join(b"%d\r\n" % n for n in range(1, 20001))


def test_a_run_started_on_a_is_run_by_the_worker_and_watched_live_from_b_byte_for_byte(deployment):
    operator = login(deployment.http("daphne-a"), "operator")
    run_pk = start_run(operator, deployment.http("daphne-a"), deployment.exec_target(), COMMAND)

    watched = asyncio.run(_viewer(deployment, run_pk, timeout=60))

    assert watched.last_status["status"] == "succeeded", watched.last_status
    assert watched.live_chunks > 0  # not only a replay of the stored transcript: live, across processes
    assert watched.seqs == list(range(1, len(watched.seqs) + 1))
    assert bytes(watched.data) == EXPECTED
    stored = operator.get(f"{deployment.http('daphne-a')}/runs/{run_pk}/transcript.txt?escapes=1", timeout=30)
    assert stored.status_code == 200 and stored.content == EXPECTED
    ((runner_id, exit_code),) = deployment.sql("SELECT runner_id, exit_code FROM runs_run WHERE id = %s", (run_pk,))
    assert f":{deployment.procs['runworker'].pid}:" in runner_id and exit_code == 0  # the worker ran it, not A


def test_a_run_whose_worker_is_killed_mid_run_ends_as_runner_lost(deployment):
    operator = login(deployment.http("daphne-a"), "operator")
    command = "for i in $(seq 1 600); do echo tick $i; sleep 0.1; done"
    run_pk = start_run(operator, deployment.http("daphne-a"), deployment.exec_target(), command)

    killed_at: list[float] = []

    async def kill_mid_run_then_watch():
        ticking = await _viewer(deployment, run_pk, timeout=60, until=lambda w: b"tick 5\r\n" in w.data)
        assert ticking.last_status["status"] == "running"
        deployment.kill("runworker")  # SIGKILL: no goodbye, the heartbeat just stops
        killed_at.append(time.time())
        # The bound: STALE + SWEEP after the last heartbeat; the margin is for a loaded CI machine.
        return await _viewer(deployment, run_pk, timeout=STALE_SECONDS + 2 * SWEEP_SECONDS + 45)

    watched = asyncio.run(kill_mid_run_then_watch())
    print(f"run {run_pk}: ended {watched.finished_at - killed_at[0]:.1f} s after its runner was killed")

    status = watched.last_status
    assert status["finished"] and status["status"] == "error", status
    assert status["end_reason"].startswith("Runner lost"), status
    assert b"tick 5\r\n" in watched.data and b"tick 600" not in watched.data
    ((db_status, end_reason),) = deployment.sql("SELECT status, end_reason FROM runs_run WHERE id = %s", (run_pk,))
    assert db_status == "error" and end_reason == status["end_reason"]
    page = operator.get(f"{deployment.http('daphne-a')}/runs/{run_pk}/", timeout=30)
    assert "Runner lost" in page.text and page.status_code == 200
    # The sweep that ended it held the deployment's one lease, in a process still alive (A or B).
    ((holder,),) = deployment.sql("SELECT holder FROM leases_lease WHERE name = 'runs-sweep'")
    assert int(holder.split(":")[1]) in {deployment.procs["daphne-a"].pid, deployment.procs["daphne-b"].pid}
    ended = deployment.sql(
        "SELECT count(*) FROM audit_auditevent WHERE action = 'run.ended' AND target LIKE %s", (f"run #{run_pk} %",)
    )
    assert ended == [(1,)]
