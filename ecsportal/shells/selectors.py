"""Reads for shell access: grants in force, pending requests, and the target a request names,
decided through the accounts gate and checked against ECS (`live_task_get_for_user`)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from ecsportal.accounts.models import AwsAccount
from ecsportal.approvals.models import ApprovalRequest, Status
from ecsportal.aws import records
from ecsportal.inventory.selectors import live_task_get_for_user
from ecsportal.shells.models import GrantScope, ShellGrant

ACTION = "ecs.shell_access"


def region_of_task_arn(task_arn: str) -> str:
    parts = task_arn.split(":")
    return parts[3] if len(parts) > 5 and parts[2] == "ecs" else ""


def cluster_name(cluster: str) -> str:
    return cluster.rsplit("/", 1)[-1] if cluster.startswith("arn:") else cluster


def grant_max_minutes() -> int:
    return max(5, int(settings.ECSPORTAL_SHELL_GRANT_MAX_MINUTES))


def grants_in_force(*, user: AbstractBaseUser, account: AwsAccount) -> QuerySet[ShellGrant]:
    return ShellGrant.objects.filter(user_id=user.pk, account=account, expires_at__gt=timezone.now())


def grant_for_target(
    *, user: AbstractBaseUser, account: AwsAccount, cluster: str, service: str, task_arn: str, container: str
) -> ShellGrant | None:
    """The grant in force that covers this container, the one that lasts longest, or None."""
    region = region_of_task_arn(task_arn)
    cluster = cluster_name(cluster)
    covers = Q(scope=GrantScope.CONTAINER, task_arn=task_arn, container=container)
    if service:
        covers |= Q(scope=GrantScope.SERVICE, region=region, cluster=cluster, service=service)
    return grants_in_force(user=user, account=account).filter(covers).order_by("-expires_at").first()


def grants_for_task(*, user: AbstractBaseUser, account: AwsAccount, task: records.Task, region: str, cluster: str):
    """The user's grants in force that cover some container of this task (the task page)."""
    covers = Q(scope=GrantScope.CONTAINER, task_arn=task.arn)
    if task.service_name:
        covers |= Q(scope=GrantScope.SERVICE, region=region, cluster=cluster, service=task.service_name)
    return list(grants_in_force(user=user, account=account).filter(covers).order_by("expires_at"))


def pending_requests_for_task(*, user: AbstractBaseUser, account: AwsAccount, task_arn: str) -> list[ApprovalRequest]:
    return list(
        ApprovalRequest.objects.filter(
            account=account,
            requester_id=user.pk,
            action=ACTION,
            status=Status.PENDING,
            expires_at__gt=timezone.now(),
            target__task_arn=task_arn,
        ).order_by("-created_at")
    )


def request_url(*, account_pk: int, region: str, cluster: str, task_id: str, container: str = "") -> str:
    query = {"account": account_pk, "region": region, "cluster": cluster, "task": task_id}
    if container:
        query["container"] = container
    return f"{reverse('shells:request')}?{urlencode(query)}"


@dataclass(frozen=True)
class ShellTarget:
    account: AwsAccount
    region: str
    cluster: str
    task: records.Task
    container: str
    scope: str

    def as_json(self, *, minutes: int) -> dict[str, object]:
        return {
            "region": self.region,
            "cluster": self.cluster,
            "service": self.task.service_name,
            "task_arn": self.task.arn,
            "container": self.container,
            "scope": self.scope,
            "minutes": minutes,
        }

    @property
    def label(self) -> str:
        if self.scope == GrantScope.SERVICE:
            return f"shell on service {self.task.service_name} in {self.cluster} ({self.region})"
        return f"shell on {self.cluster}/{self.task.id} container {self.container} ({self.region})"


def shell_target_for_user(
    *, user: AbstractBaseUser, account_pk: int | None, region: str, cluster: str, task: str, container: str, scope: str
) -> ShellTarget:
    """The target an access request names, or ValidationError (by field) saying what to fix."""
    if account_pk is None or not region or not cluster or not task:
        raise ValidationError("Say which task: open it in the inventory and choose “Request shell access…” there.")
    live = live_task_get_for_user(
        user=user, account_pk=account_pk, region=region, cluster=cluster, task=task, running=True
    )
    names = [c.name for c in live.task.containers]
    if container not in names:
        raise ValidationError({"container": f"Choose one of this task's containers: {', '.join(names) or 'none'}."})
    if scope not in GrantScope.values:
        raise ValidationError({"scope": "Choose this container, or the service's tasks."})
    if scope == GrantScope.SERVICE and not live.task.service_name:
        raise ValidationError({"scope": "This task is not part of a service; ask for this container instead."})
    return ShellTarget(
        account=live.account, region=live.region, cluster=live.cluster, task=live.task, container=container, scope=scope
    )
