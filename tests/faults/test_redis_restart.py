"""Redis restarted under busy runs in worker and embedded mode: the commands go on, nothing is lost."""

from __future__ import annotations

import asyncio
import threading
import time

from tests.faults.runs import busy_command, busy_output, run_row, start_runs, stored, viewer, viewer_cookie

ROUNDS = 100  # about 160 KB per run over 6-8 s


def test_runs_outlive_a_redis_restart_and_the_runner_stays(deployment, servers, runs_on):
    runs = start_runs(deployment, busy_command(ROUNDS), 4, on=runs_on)
    cookie = viewer_cookie(deployment)
    expected = busy_output(ROUNDS)
    runner = "worker" if runs_on == "daphne-a" else runs_on
    down, restarted = threading.Event(), threading.Event()

    def restart_redis_once_output_flows() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(stored(deployment, runs[-1])) < len(expected) // 5:
            time.sleep(0.05)
        servers.redis.stop()
        down.set()
        time.sleep(2.0)
        servers.redis.start()
        restarted.set()

    async def watch_all():
        loop = asyncio.get_running_loop()
        fault = loop.run_in_executor(None, restart_redis_once_output_flows)
        watchers = [asyncio.create_task(viewer(deployment, cookie, pk, timeout=90)) for pk in runs]
        await loop.run_in_executor(None, down.wait, 60)
        latecomer = await viewer(deployment, cookie, runs[0], timeout=90)  # opens its socket while Redis is down
        await fault
        return [*await asyncio.gather(*watchers), latecomer]

    *watched, latecomer = asyncio.run(watch_all())

    assert restarted.is_set()
    assert latecomer.last_status["status"] == "succeeded" and bytes(latecomer.data) == expected
    assert not [f for f in latecomer.failures if "HTTP 5" in f], latecomer.failures
    for pk, seen in zip(runs, watched, strict=True):
        row = run_row(deployment, pk)
        assert (row["status"], row["exit_code"]) == ("succeeded", 0), (pk, row)  # the command was not killed
        assert stored(deployment, pk) == expected  # byte for byte
        assert row["bytes_out"] == len(expected)
        assert f":{deployment.procs[runner].pid}:" in row["runner_id"], row  # run where the mode says
        assert seen.last_status["status"] == "succeeded" and bytes(seen.data) == expected
        assert not [f for f in seen.failures if "HTTP 5" in f], seen.failures  # a reconnect never met a 500
    for name in {"worker", runs_on}:  # the process that ran them, and the worker either way
        assert deployment.alive(name), deployment.log_tail(name)
    # And the runner still takes runs after the restart.
    (after,) = start_runs(deployment, "echo still here", 1, on=runs_on)
    seen = asyncio.run(viewer(deployment, cookie, after, timeout=60))
    assert seen.last_status["status"] == "succeeded" and b"still here" in seen.data, seen.last_status["end_reason"]
