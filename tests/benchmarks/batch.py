"""A batch of 100 targets at concurrency 20 against the local AWS and the SSM agent emulator.

Not a test: ``nice -n 10 python tests/benchmarks/batch.py`` from the repository root
(``--targets 100 --concurrency 20 --command 'sleep 1; echo ok'``). One process, as
`manage.py demo` serves: moto on loopback, the emulator, the in-process runner on this
process's event loop, the batches scheduler thread woken by each run's end. The database is
DATABASE_URL when set, else a SQLite file of its own (a temporary directory).

1. One run's time: `--single` runs of the command on one target, one after the other (through
   `runs.services.run_request`), from the request to the recorded end; the median is *t1*.
2. The batch: `batches.services.batch_start` on `--targets` tasks at `--concurrency`, from the
   call to the batch's recorded end: *wall*.

moto and the portal share this one process (the emulator runs in a process of its own, as a real
agent runs in the containers; `--agent-inside` puts it here, as in `manage.py demo`), so at
concurrency 20 they share its one interpreter lock: `process_cpu_seconds` against `wall_seconds`
says how much of the wall time was CPU-bound, and `target_run_p50_seconds` against t1 how much
each run slowed down when 20 ran at once.

The ideal is targets / concurrency × t1 (each slot runs its share back to back with no gap);
`batch_overhead_ratio` = wall / ideal (goal ≤ 1.5). The API's start-to-exit-code time
(`api_true_p95_ms`) comes after: `tests/benchmarks/api.py` starts the demo and times `--api-runs`
runs of `true` from POST /api/v1/runs to the output's `complete` (the CLI's path).
The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
REGION = "sa-east-1"  # a region of its own in moto's default account
CLUSTER = "bench-batch"


def setup(database_dir: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{database_dir}/bench.sqlite3")
    os.environ["ECSPORTAL_BATCH_SWEEP_SECONDS"] = "0"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        settings.DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    call_command("migrate", verbosity=0)


async def wait_until(check, timeout: float) -> None:
    from channels.db import database_sync_to_async

    deadline = time.monotonic() + timeout
    while not await database_sync_to_async(check)():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout} s")
        await asyncio.sleep(0.02)


async def bench(args: argparse.Namespace) -> dict[str, object]:
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model

    from ecsportal.accounts.models import AwsAccount, Membership, Role
    from ecsportal.aws import local, sessions
    from ecsportal.batches import services as batches
    from ecsportal.batches.models import Batch, BatchStatus
    from ecsportal.demo import localaws
    from ecsportal.runs import dispatcher
    from ecsportal.runs.models import END_STATUSES, Run, RunStatus
    from ecsportal.runs.services import run_request
    from tests.lab import lab_cluster, lab_task

    aws = localaws.LocalAws()
    localaws.seed_iam(aws.endpoint_url)
    sessions.configure(
        endpoint_url=aws.endpoint_url, local_exec=True, connect_timeout=2, read_timeout=10, max_attempts=2
    )
    # The SSM agent emulator in a process of its own (relay.py's): a real agent runs in the
    # containers, not in the portal, so its CPU (20 PTYs at once) must not take the portal's GIL.
    # `--agent-inside` keeps it in this process, as `manage.py demo` does.
    if args.agent_inside:
        emulator = localaws.start_data_channel()
    else:
        from tests.benchmarks.relay import RemoteAgent, start_agent

        os.environ.setdefault("RELAY_AGENT_KEY", secrets.token_hex(16))
        agent_process, address_file = start_agent(tempfile.mkdtemp(prefix="batch-agent-"))
        remote = RemoteAgent(address_file)
        local.set_session_registrar(
            lambda request: remote.register_session(
                session_id=request.session_id, token=request.token, command=request.command, container=request.container
            )
        )
        emulator = SimpleNamespace(stop=lambda: (agent_process.terminate(), agent_process.wait(10)))
    try:
        dispatcher.bind_loop(asyncio.get_running_loop())
        ecs = lab_cluster(aws.endpoint_url, region=REGION, cluster=CLUSTER, families=("bench",))
        specs = [localaws.ContainerSpec("app", "bench/app:1")]
        arns = [
            lab_task(ecs, region=REGION, cluster=CLUSTER, family="bench", containers=specs) for _ in range(args.targets)
        ]

        def people():
            user = get_user_model().objects.create_user("bench-operator", password="x")
            account = AwsAccount.objects.create(
                name="Bench", account_id=localaws.ACCOUNT_A, regions=[REGION], approvals_for_commands=0
            )
            Membership.objects.create(user=user, account=account, role=Role.OPERATOR)
            return user, account

        user, account = await sync_to_async(people)()
        singles = []
        for i in range(args.single):
            began = time.monotonic()
            run = await sync_to_async(run_request)(
                actor=user, account_pk=account.pk, region=REGION, cluster=CLUSTER, task=arns[i], container="app",
                command=args.command,
            )  # fmt: skip
            await wait_until(lambda pk=run.pk: Run.objects.get(pk=pk).status in END_STATUSES, 120)
            singles.append(time.monotonic() - began)
        t1 = statistics.median(singles)

        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        began = time.monotonic()
        batch = await sync_to_async(batches.batch_start)(
            user=user,
            spec=batches.BatchSpec(accounts=(account.pk,), region=REGION, cluster=CLUSTER),
            command=args.command,
            options=batches.BatchOptions(concurrency=args.concurrency),
        )
        await wait_until(lambda: Batch.objects.get(pk=batch.pk).is_finished, 900)
        wall = time.monotonic() - began
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)

        def timings():
            runs = list(Run.objects.filter(batch_id=batch.pk))
            spans = [(r.ended_at - r.created_at).total_seconds() for r in runs]
            waits = [(r.started_at - r.created_at).total_seconds() for r in runs if r.started_at]
            return statistics.median(spans), statistics.median(waits)

        run_p50, connect_p50 = await sync_to_async(timings)()

        def outcome():
            b = Batch.objects.get(pk=batch.pk)
            return b.status, Run.objects.filter(batch=b, status=RunStatus.SUCCEEDED).count(), b.end_reason

        status, succeeded, reason = await sync_to_async(outcome)()
        ideal = args.targets / args.concurrency * t1
        return {
            "targets": args.targets,
            "concurrency": args.concurrency,
            "command": args.command,
            "single_run_seconds": [round(s, 3) for s in singles],
            "t1_seconds": round(t1, 3),
            "ideal_seconds": round(ideal, 3),
            "wall_seconds": round(wall, 3),
            "batch_status": status,
            "succeeded": succeeded,
            "end_reason": reason,
            "target_run_p50_seconds": round(run_p50, 3),  # a target's run, from its queueing to its end
            "target_connect_p50_seconds": round(connect_p50, 3),  # queueing to RUNNING (ExecuteCommand, channel)
            "process_cpu_seconds": round(cpu, 2),  # this process: the portal and moto (and the emulator if inside)
            "agent": "inside" if args.agent_inside else "own process",
            "load_1m": round(os.getloadavg()[0], 2),
            "batch_overhead_ratio": round(wall / ideal, 3),
            "ok": status == BatchStatus.FINISHED and succeeded == args.targets,
        }
    finally:
        local.set_session_registrar(None)
        emulator.stop()
        sessions.configure(endpoint_url=None)
        aws.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--single", type=int, default=3, help="single runs timed for t1 (median)")
    parser.add_argument("--command", default="sleep 1; echo ok")
    parser.add_argument("--agent-inside", action="store_true", help="the emulator in this process (as the demo)")
    parser.add_argument("--api-runs", type=int, default=40, help="runs of `true` through the API (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ecsportal-bench-batch-") as tmp:
        setup(tmp)
        result = asyncio.run(bench(args))
    result["api_true_p95_ms"] = None
    if args.api_runs:
        from tests.benchmarks import api

        figures = api.measure(args.api_runs)
        result.update(api_true_p50_ms=figures["api_true_p50_ms"], api_true_p95_ms=figures["api_true_p95_ms"])
        result["api_load_1m"] = figures["load"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
