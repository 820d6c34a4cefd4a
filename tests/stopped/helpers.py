"""Seeding moto's backend for stopped-task tests and the benchmark.

One stopped task goes through the API (create cluster, register, run, stop); the rest are
copies of moto's own Task object with fresh IDs, which is thousands of times faster than
RunTask + StopTask per task and gives DescribeTasks exactly the same shape to answer with.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta

from ecsportal.demo import localaws


def stopped_cluster(
    endpoint_url: str,
    name: str,
    *,
    count: int = 1,
    account_id: str = localaws.ACCOUNT_A,
    region: str = "eu-west-1",
    spec: localaws.StoppedSpec | None = None,
) -> list[str]:
    """Create cluster `name` holding `count` stopped tasks; returns their ARNs."""
    spec = spec or localaws.StoppedSpec(
        "bench-app",
        "bench",
        "EssentialContainerExited",
        "Essential container in task exited",
        5,
        [("app", 137, "OutOfMemoryError: Container killed due to memory usage"), ("envoy", 143, "")],
    )
    arns = localaws.seed_aws(endpoint_url, [localaws.ClusterSpec(account_id, region, name, stopped=[spec])])[name]
    template = localaws.find_task(account_id, region, arns[0])
    tasks = localaws.ecs_backend(account_id, region).tasks[name]
    now = datetime.now(UTC)
    for index in range(1, count):
        task = copy.copy(template)
        task.id = str(uuid.UUID(int=uuid.uuid4().int))
        task.containers = [copy.copy(c) for c in template.containers]
        task.stopped_at = now - timedelta(minutes=index % 55, seconds=index)
        tasks[task.task_arn] = task
        arns.append(task.task_arn)
    return arns


def forget(account_id: str, region: str, cluster: str, arn: str) -> None:
    """What ECS does an hour after a task stops."""
    localaws.ecs_backend(account_id, region).tasks[cluster].pop(arn)
