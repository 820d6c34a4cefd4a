"""A lab for the gate: its own account, region and cluster in the local AWS (`tests/lab.py`),
and fresh tasks: every test runs the tasks it stops. conftest.py imports the fixtures.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest

from ecsportal.demo import localaws
from tests.lab import lab_account, lab_cluster, lab_task

LAB_REGION = "ap-southeast-2"
LAB_CLUSTER = "approvals-lab"


@pytest.fixture(scope="session")
def lab_ecs(local_aws):
    return lab_cluster(local_aws.endpoint_url, region=LAB_REGION, cluster=LAB_CLUSTER, families=("lab-web", "lab-job"))


@pytest.fixture
def run_task(lab_ecs) -> Callable[..., str]:
    """`run_task(service="web")` → the ARN of a new running task in the lab cluster."""

    def _run(service: str = "web") -> str:
        family = "lab-web" if service else "lab-job"
        return lab_task(lab_ecs, region=LAB_REGION, cluster=LAB_CLUSTER, family=family, service=service)

    return _run


def task_state(arn: str) -> SimpleNamespace:
    """What the local AWS holds for the task (moto's own object, not our reading of it)."""
    task = localaws.find_task(localaws.ACCOUNT_A, LAB_REGION, arn)
    return SimpleNamespace(last_status=task.last_status, stopped_reason=task.stopped_reason)


@pytest.fixture
def lab(cast):
    """The lab account with the cast's roles: operator, approver, approver2, viewer; admin is superuser."""
    return lab_account(cast, name="Approvals Lab", region=LAB_REGION, approvals_for_stop=1)


@pytest.fixture
def stop_calls(local_aws, monkeypatch) -> list[str]:
    """Every StopTask that reaches the local AWS in the lab region (counted inside moto's backend)."""
    backend = localaws.ecs_backend(localaws.ACCOUNT_A, LAB_REGION)
    calls: list[str] = []
    original = backend.stop_task

    def counting(cluster_str: str, task_str: str, reason: str):
        calls.append(task_str)
        return original(cluster_str, task_str, reason)

    monkeypatch.setattr(backend, "stop_task", counting)
    return calls


@pytest.fixture
def stop_target(lab, run_task):
    """`stop_target(user, service="web")` → a StopTarget for a fresh running task, resolved as `user`."""
    from ecsportal.stops.selectors import stop_target_for_user

    def _target(user, service: str = "web", role_arn: str = ""):
        arn = run_task(service)
        return stop_target_for_user(
            user=user,
            account_pk=lab.pk,
            region=LAB_REGION,
            cluster=LAB_CLUSTER,
            task=arn.rsplit("/", 1)[-1],
            task_arn="",
            role_arn=role_arn,
        )

    return _target
