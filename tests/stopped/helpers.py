"""Stopped-task history for tests: rows built as the collector builds them, and moto's backend seeded for the benchmark.

One stopped task goes through the API (create cluster, register, run, stop); the rest are
copies of moto's own Task object with fresh IDs, which is thousands of times faster than
RunTask + StopTask per task and gives DescribeTasks exactly the same shape to answer with.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from ecsportal.aws import records
from ecsportal.demo import localaws
from ecsportal.stopped.collector import stopped_task_row


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


_counter = iter(range(10**6))


def row(account, *, cluster="prod-web", region="eu-west-1", service="web", family="web", minutes_ago=5,
        stop_code="EssentialContainerExited", reason="Essential container in task exited",
        containers=(("app", 1, ""),)):  # fmt: skip
    """One history row built the way the collector builds it (category and signature included)."""
    n = next(_counter)
    stopped = timezone.now() - timedelta(minutes=minutes_ago)
    task = records.Task(
        arn=f"arn:aws:ecs:{region}:{account.account_id}:task/{cluster}/{n:032x}",
        cluster_arn=f"arn:aws:ecs:{region}:{account.account_id}:cluster/{cluster}",
        last_status="STOPPED",
        desired_status="STOPPED",
        launch_type="FARGATE",
        capacity_provider="",
        platform_version="1.4.0",
        task_definition_arn=f"arn:aws:ecs:{region}:{account.account_id}:task-definition/{family}:3",
        group=f"service:{service}" if service else "family:" + family,
        started_by="",
        availability_zone=f"{region}a",
        enable_execute_command=False,
        started_at=stopped - timedelta(minutes=30),
        stopping_at=stopped - timedelta(seconds=30),
        stopped_at=stopped,
        execution_stopped_at=stopped,
        stop_code=stop_code,
        stopped_reason=reason,
        containers=tuple(
            records.Container(name, "", "STOPPED", "img", "", code, why, "") for name, code, why in containers
        ),
    )
    item = stopped_task_row(task, account_pk=account.pk, region=region, cluster=cluster, now=timezone.now())
    item.save()
    return item
