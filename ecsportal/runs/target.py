"""The run's target as the runner needs it, and the AWS calls about it (in threads of their own)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async

from ecsportal.aws import ecs, records
from ecsportal.runs.models import Run, RunStatus
from ecsportal.runs.selectors import run_real_command


@dataclass
class Target:
    run: Run
    config: object
    command: str


def load_target(run_pk: int) -> Target | None:
    """The queued run with its account's AWS configuration and real command; None if not queued."""
    run = Run.objects.select_related("account").filter(pk=run_pk).first()
    if run is None or run.status != RunStatus.QUEUED:
        return None
    return Target(run=run, config=run.account.aws_config(), command=run_real_command(run=run))


AWS_THREADS = 32
"""Threads for the runners' AWS calls, per process. asyncio's default pool has cpu + 4 (six on
two cores): with 250 runs starting at once in one worker their ExecuteCommand calls queued for
a thread for over a minute (`tests/benchmarks/scale.py`). The calls wait on the network, not
the CPU; boto3 clients are thread-safe."""
_pool: ThreadPoolExecutor | None = None


def _aws_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=AWS_THREADS, thread_name_prefix="ecsportal-run-aws")
    return _pool


def in_aws_thread(fn: Callable[..., Any]) -> Callable[..., Any]:
    """AWS calls run in a pool of their own (AWS_THREADS), not the one thread Django's database
    calls share: a slow AWS answer must not hold up every run's writes."""
    return sync_to_async(fn, thread_sensitive=False, executor=_aws_pool())


def describe_task(target: Target) -> records.Task | None:
    run = target.run
    found = ecs.describe_tasks(target.config, run.region, run.cluster, [run.task_arn], role_arn=run.role_arn or None)
    return next((t for t in found if t.arn == run.task_arn), None)
