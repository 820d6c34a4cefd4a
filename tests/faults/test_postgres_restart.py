"""PostgreSQL restarted under busy runs in worker and embedded mode: the commands go on, nothing is lost.

Needs the runner's storage retry (issue 15: a failed transcript write is retried from a
bounded buffer while the session stays open).
"""

from __future__ import annotations

import asyncio
import threading
import time

from tests.faults.runs import busy_command, busy_output, run_row, start_runs, stored, viewer, viewer_cookie

ROUNDS = 100  # about 160 KB per run over 6-8 s


def test_runs_outlive_a_postgresql_restart_and_the_runner_stays(deployment, servers, runs_on):
    runs = start_runs(deployment, busy_command(ROUNDS), 4, on=runs_on)
    cookie = viewer_cookie(deployment)
    expected = busy_output(ROUNDS)
    runner = "worker" if runs_on == "daphne-a" else runs_on
    restarted = threading.Event()

    def restart_postgres_once_output_flows() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(stored(deployment, runs[-1])) < len(expected) // 5:
            time.sleep(0.05)
        servers.postgres.restart()  # pg_ctl restart -m fast: every connection is cut
        restarted.set()

    async def watch_all():
        fault = asyncio.get_running_loop().run_in_executor(None, restart_postgres_once_output_flows)
        watched = await asyncio.gather(*(viewer(deployment, cookie, pk, timeout=90) for pk in runs))
        await fault
        return watched

    watched = asyncio.run(watch_all())

    assert restarted.is_set()
    for pk, seen in zip(runs, watched, strict=True):
        row = run_row(deployment, pk)
        assert (row["status"], row["exit_code"]) == ("succeeded", 0), (pk, row)  # the command was not killed
        assert stored(deployment, pk) == expected  # byte for byte
        assert row["bytes_out"] == len(expected)
        assert f":{deployment.procs[runner].pid}:" in row["runner_id"], row  # run where the mode says
        assert seen.last_status["status"] == "succeeded" and bytes(seen.data) == expected
    for name in {"worker", "daphne-a", "daphne-b", runs_on}:
        assert deployment.alive(name), deployment.log_tail(name)
    (after,) = start_runs(deployment, "echo still here", 1, on=runs_on)
    seen = asyncio.run(viewer(deployment, cookie, after, timeout=60))
    assert seen.last_status["status"] == "succeeded" and b"still here" in seen.data, seen.last_status["end_reason"]
