"""What the approvals lab and the runs lab share: a cluster of their own in the local AWS, an
account with the cast's roles on it, and fresh tasks.

The demo estate is shared by every test of the session, and these tests stop tasks and run
commands in them, so each lab is a region of moto's default account that the demo does not
use. `tests/approvals/lab.py` and `tests/runs/lab.py` hold each lab's fixtures, built from
these; each app's conftest.py imports the fixtures it needs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ecsportal.demo import localaws

IMAGE = "lab/app:1"


def lab_cluster(
    endpoint_url: str, *, region: str, cluster: str, families: tuple[str, ...], service: str = "web"
) -> Any:
    """Create `cluster` with one single-container task definition per family and a service
    `service` of the first; returns the region's ECS client."""
    ecs = localaws.boto_client(endpoint_url, "ecs", region)
    ecs.create_cluster(clusterName=cluster)
    for family in families:
        ecs.register_task_definition(
            family=family,
            containerDefinitions=[{"name": "app", "image": IMAGE, "memory": 256, "cpu": 128, "essential": True}],
        )
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=families[0], desiredCount=1)
    return ecs


def lab_task(
    ecs: Any,
    *,
    region: str,
    cluster: str,
    family: str,
    service: str = "web",
    containers: list[localaws.ContainerSpec] | None = None,
    exec_enabled: bool = True,
    age_minutes: float | None = None,
) -> str:
    """Start one task and return its ARN. With `containers`, it is shaped as real ECS reports a
    running task (one container per spec, the exec agent's state) the way the demo's seed does."""
    params: dict[str, Any] = {"cluster": cluster, "taskDefinition": family, "count": 1, "launchType": "FARGATE"}
    if service:
        params["group"] = f"service:{service}"
    arn = ecs.run_task(**params)["tasks"][0]["taskArn"]
    if containers is not None:
        task = localaws.find_task(localaws.ACCOUNT_A, region, arn)
        localaws.shape_containers(task, containers, running=True, exec_enabled=exec_enabled)
        task.enable_execute_command = exec_enabled
        if age_minutes is not None:
            task.started_at = datetime.now(UTC) - timedelta(minutes=age_minutes)
    return arn


def lab_account(cast: Any, *, name: str, region: str, **policy: Any) -> Any:
    """An account on moto's default AWS account in `region`, where the cast's operator,
    approver, approver2 and viewer hold those roles (admin is a superuser)."""
    from ecsportal.accounts.models import AwsAccount, Membership, Role

    account = AwsAccount.objects.create(name=name, account_id=localaws.ACCOUNT_A, regions=[region], **policy)
    for user, role in (
        (cast.operator, Role.OPERATOR),
        (cast.approver, Role.APPROVER),
        (cast.approver2, Role.APPROVER),
        (cast.viewer, Role.VIEWER),
    ):
        Membership.objects.create(user=user, account=account, role=role)
    return account
