"""The faults of issue 15 as one script: what each costs the runs that are going on.

Not a test: ``python tests/benchmarks/faults.py`` from the repository root. It starts a
PostgreSQL and a Redis of its own (never the machine's), the portal on them in worker mode
(`manage.py demo --aws-only`, daphne A and B, two `runsworker`s; DEBUG off), and plays each
scenario with `--runs` runs that each print `--mb` MB over `--seconds` s, watched from daphne B,
injecting the fault once the last run has stored `--after` MB:

- ``postgres``: `pg_ctl restart -m fast` (every connection cut, back within a second);
- ``redis``: Redis stopped, down 1 s, started again (its snapshot kept);
- ``sigterm-worker``: SIGTERM to the worker holding the runs (a rolling deploy: a new worker
  is started first); the deadline (ECSPORTAL_DRAIN_SECONDS) is longer than the runs;
- ``sigterm-daphne``: the same runs in an in-process daphne, which gets the SIGTERM.

Per scenario: `commands_killed` (runs that did not succeed: their command was cut),
`bytes_lost` (what the command printed and the stored transcript or a viewer lacks),
`runs_stuck` (runs still active once every viewer is done or a minute after the runs should
have ended), `drain_seconds` (SIGTERM to exit). The last line is one JSON object with the
totals and every scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.deployment import Deployment, WatchTimeout
from tests.faults.runs import busy_command, busy_output, run_row, start_runs, stored, viewer, viewer_cookie
from tests.faults.servers import LocalPostgres, LocalRedis

LINE = 38  # bytes per line of busy_command, \r\n included
ACTIVE = ("queued", "connecting", "running")


def shape(mb: float, seconds: float) -> tuple[int, int, float]:
    """rounds, lines per round, pause: about `mb` MB over `seconds` s in 0.1 s rounds."""
    rounds = max(1, int(seconds / 0.1))
    lines = max(1, int(mb * 1_000_000 / LINE / rounds))
    return rounds, lines, 0.1


def scenario(name: str, deployment: Deployment, servers, args: argparse.Namespace) -> dict:
    rounds, lines, pause = shape(args.mb, args.seconds)
    command, expected = busy_command(rounds, lines, pause), busy_output(rounds, lines)
    on = "daphne-inprocess" if name == "sigterm-daphne" else "daphne-a"
    if name == "sigterm-daphne":
        deployment.start_daphne(on, ECSPORTAL_RUNNER_MODE="inprocess")
        deployment.wait_ready()
    runs = start_runs(deployment, command, args.runs, on=on)
    cookie = viewer_cookie(deployment)
    result: dict = {"scenario": name}

    def inject() -> None:
        deadline = time.monotonic() + args.seconds + 60
        while len(stored(deployment, runs[-1])) < args.after * 1_000_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        began = time.monotonic()
        if name == "postgres":
            servers.postgres.restart()
        elif name == "redis":
            servers.redis.restart(down=1.0)
        elif name == "sigterm-worker":
            holders = {run_row(deployment, pk)["runner_id"].split(":")[1] for pk in runs}
            target = next(n for n, p in deployment.procs.items() if n.startswith("worker") and str(p.pid) in holders)
            deployment.start_worker(f"{target}-next")
            deployment.wait_listening(f"{target}-next")
            began = time.monotonic()
            deployment.terminate(target, timeout=args.seconds + 60)
            result["drain_seconds"] = round(time.monotonic() - began, 1)
        elif name == "sigterm-daphne":
            deployment.terminate(on, timeout=args.seconds + 60)
            deployment.ports.pop(on, None)
            result["drain_seconds"] = round(time.monotonic() - began, 1)
        result["fault_seconds"] = round(time.monotonic() - began, 2)

    fault = threading.Thread(target=inject)
    fault.start()

    async def watch_all():
        async def one(pk: int):
            try:
                return await viewer(deployment, cookie, pk, timeout=args.seconds + 90)
            except WatchTimeout:
                return None

        return await asyncio.gather(*(one(pk) for pk in runs))

    seen = asyncio.run(watch_all())
    fault.join()
    rows = {pk: run_row(deployment, pk) for pk in runs}
    lost = 0
    for pk, watched in zip(runs, seen, strict=True):
        transcript = stored(deployment, pk)
        lost += max(0, len(expected) - len(transcript)) if rows[pk]["status"] == "succeeded" else 0
        lost += 0 if transcript == expected[: len(transcript)] else len(transcript)  # wrong bytes count as lost
        lost += max(0, len(transcript) - len(watched.data)) if watched is not None else len(transcript)
    result.update(
        {
            "commands_killed": sum(row["status"] != "succeeded" for row in rows.values()),
            "bytes_lost": lost,
            "runs_stuck": sum(row["status"] in ACTIVE for row in rows.values()),
            "viewers_without_end": sum(w is None or not w.last_status.get("finished") for w in seen),
            "ends": sorted({row["end_reason"][:120] for row in rows.values() if row["status"] != "succeeded"}),
        }
    )
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenarios", default="postgres,redis,sigterm-worker,sigterm-daphne")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--mb", type=float, default=1.5)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--after", type=float, default=0.3, help="MB stored by the last run before the fault")
    args = parser.parse_args()
    postgres, redis = LocalPostgres(), LocalRedis()
    postgres.start()
    redis.start()
    servers = argparse.Namespace(postgres=postgres, redis=redis)
    deployment = Deployment.start(
        workdir=Path(tempfile.mkdtemp(prefix="faults-bench-")),
        database_url=postgres.url,
        redis_url=redis.url,
        channel_prefix="faults-bench",
        settings={
            "ECSPORTAL_RUN_HEARTBEAT_SECONDS": "1",
            "ECSPORTAL_RUN_STALE_SECONDS": "20",
            "ECSPORTAL_RUN_SWEEP_SECONDS": "5",
            "ECSPORTAL_RUN_TASK_CHECK_SECONDS": "60",
            "ECSPORTAL_DRAIN_SECONDS": str(args.seconds + 15),
        },
        label="faultsbench",
        debug=False,
    )
    results = []
    try:
        deployment.start_daphne("daphne-a")
        deployment.start_daphne("daphne-b")
        deployment.start_worker("worker-1")
        deployment.start_worker("worker-2")
        deployment.wait_ready()
        for name in args.scenarios.split(","):
            results.append(scenario(name, deployment, servers, args))
    except BaseException:
        print(deployment.logs_tail(), file=sys.stderr)
        raise
    finally:
        deployment.stop()
        try:
            redis.close()
        finally:
            postgres.close()
    print(
        json.dumps(
            {
                "commands_killed": sum(r["commands_killed"] for r in results),
                "bytes_lost": sum(r["bytes_lost"] for r in results),
                "runs_stuck": sum(r["runs_stuck"] for r in results),
                "drain_seconds": max((r["drain_seconds"] for r in results if "drain_seconds" in r), default=None),
                "scenarios": results,
            }
        )
    )


if __name__ == "__main__":
    main()
