"""Processes stopped mid-run: SIGTERM drains (worker and web server), SIGKILL leaves it to the sweep.

What each test checks of every run: how it ended and why, that its stored transcript is what
the command printed (whole, or a prefix when it was cut), that `bytes_out` is the stored size,
and that a viewer saw exactly the stored transcript and the end.
"""

from __future__ import annotations

import asyncio
import signal
import time

from tests.faults.conftest import DRAIN_SECONDS, STALE_SECONDS, SWEEP_SECONDS
from tests.faults.runs import busy_command, busy_output, run_row, start_runs, stored, viewer, viewer_cookie

SHORT = 30  # rounds of busy_command: about 2 s, well within the drain deadline
LONG = "for i in $(seq 1 2000); do echo tick $i; sleep 0.05; done"  # 100 s: cut at the deadline
MARGIN = 20  # seconds for a loaded machine, on top of the deadline


async def _running(deployment, cookie, run_pk: int, text: bytes) -> None:
    await viewer(deployment, cookie, run_pk, timeout=60, until=lambda w: text in w.data)


def _assert_cut_at_the_deadline(deployment, run_pk: int, seen, who: str) -> None:
    row = run_row(deployment, run_pk)
    transcript = stored(deployment, run_pk)
    assert row["status"] == "error", row
    assert row["end_reason"].startswith(f"Ended: the {who} running this command was stopped"), row["end_reason"]
    assert row["bytes_out"] == len(transcript) > 0  # reconciled: the stored transcript's size
    assert transcript.startswith(b"tick 1\r\ntick 2\r\n") and b"tick 2000" not in transcript
    assert seen.last_status["status"] == "error" and seen.last_status["end_reason"] == row["end_reason"]
    assert bytes(seen.data) == transcript  # what a viewer saw is the stored transcript


def test_sigterm_to_a_worker_drains_its_runs_and_takes_no_new_one(deployment):
    short, long_ = start_runs(deployment, busy_command(SHORT), 1) + start_runs(deployment, LONG, 1)
    cookie = viewer_cookie(deployment)

    async def scenario():
        await _running(deployment, cookie, long_, b"tick 3\r\n")
        deployment.start_worker("worker-new")  # a rolling deploy: the new worker first, then the old one stops
        await asyncio.to_thread(deployment.wait_listening, "worker-new")
        watchers = [
            asyncio.create_task(viewer(deployment, cookie, pk, timeout=DRAIN_SECONDS + 60)) for pk in (short, long_)
        ]
        started = time.monotonic()
        stopping = asyncio.get_running_loop().run_in_executor(
            None, deployment.terminate, "worker", DRAIN_SECONDS + MARGIN
        )
        await asyncio.sleep(1)
        queued = await asyncio.to_thread(start_runs, deployment, "echo after the deploy", 3)
        rc = await stopping
        took = time.monotonic() - started
        seen_queued = await asyncio.gather(*(viewer(deployment, cookie, pk, timeout=60) for pk in queued))
        return rc, took, await asyncio.gather(*watchers), queued, seen_queued

    rc, took, (seen_short, seen_long), queued, seen_queued = asyncio.run(scenario())
    print(f"worker drained and exited in {took:.1f} s (deadline {DRAIN_SECONDS} s)")

    assert rc == 0 and took < DRAIN_SECONDS + MARGIN
    row = run_row(deployment, short)
    assert (row["status"], row["exit_code"]) == ("succeeded", 0), row  # finished during the drain
    assert stored(deployment, short) == busy_output(SHORT) == bytes(seen_short.data)
    _assert_cut_at_the_deadline(deployment, long_, seen_long, "runs worker")
    for pk, seen in zip(queued, seen_queued, strict=True):  # queued while the old worker drained
        row = run_row(deployment, pk)
        assert (row["status"], row["exit_code"]) == ("succeeded", 0), row
        assert f":{deployment.procs['worker-new'].pid}:" in row["runner_id"]  # the stopping worker took none
        assert b"after the deploy" in seen.data


def test_sigterm_to_a_web_server_drains_its_in_process_runs(deployment):
    deployment.start_daphne("daphne-inprocess", ECSPORTAL_RUNNER_MODE="inprocess")
    deployment.wait_ready()
    short, long_ = start_runs(deployment, busy_command(SHORT), 1, on="daphne-inprocess") + start_runs(
        deployment, LONG, 1, on="daphne-inprocess"
    )
    cookie = viewer_cookie(deployment)

    async def scenario():
        await _running(deployment, cookie, long_, b"tick 3\r\n")
        watchers = [
            asyncio.create_task(viewer(deployment, cookie, pk, timeout=DRAIN_SECONDS + 60)) for pk in (short, long_)
        ]
        started = time.monotonic()
        rc = await asyncio.to_thread(deployment.terminate, "daphne-inprocess", DRAIN_SECONDS + MARGIN)
        return rc, time.monotonic() - started, await asyncio.gather(*watchers)

    try:
        rc, took, (seen_short, seen_long) = asyncio.run(scenario())
    finally:
        deployment.ports.pop("daphne-inprocess", None)
    print(f"daphne drained and exited in {took:.1f} s (deadline {DRAIN_SECONDS} s)")

    assert took < DRAIN_SECONDS + MARGIN, took
    assert rc in (0, -signal.SIGTERM), rc
    row = run_row(deployment, short)
    assert (row["status"], row["exit_code"]) == ("succeeded", 0), row
    assert stored(deployment, short) == busy_output(SHORT) == bytes(seen_short.data)
    _assert_cut_at_the_deadline(deployment, long_, seen_long, "web server")


def test_sigkill_to_a_worker_leaves_the_run_to_the_sweep_with_a_reconciled_byte_count(deployment):
    (run_pk,) = start_runs(deployment, LONG, 1)
    cookie = viewer_cookie(deployment)

    async def scenario():
        await _running(deployment, cookie, run_pk, b"tick 20\r\n")
        watcher = asyncio.create_task(viewer(deployment, cookie, run_pk, timeout=STALE_SECONDS + 60))
        await asyncio.sleep(0.3)
        deployment.kill("worker")  # no goodbye: the heartbeat just stops
        killed = time.monotonic()
        seen = await watcher
        return seen, time.monotonic() - killed

    seen, took = asyncio.run(scenario())
    print(f"run {run_pk}: ended {took:.1f} s after its worker was killed (bound {STALE_SECONDS + SWEEP_SECONDS} s)")

    row = run_row(deployment, run_pk)
    transcript = stored(deployment, run_pk)
    assert row["status"] == "error" and row["end_reason"].startswith("Runner lost"), row
    assert row["bytes_out"] == len(transcript) > 0  # not the last heartbeat's count
    assert transcript.startswith(b"tick 1\r\n") and b"tick 2000" not in transcript
    assert seen.last_status["status"] == "error" and bytes(seen.data) == transcript
