"""Which task a stop form means, decided through the accounts gate and checked against ECS."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError

from ecsportal.accounts.models import AwsAccount, Role
from ecsportal.accounts.selectors import account_get_for_user, accounts_for_user
from ecsportal.approvals.models import ApprovalRequest, Status
from ecsportal.aws import records
from ecsportal.inventory.selectors import live_task_get_for_user

TASK_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws|aws-cn|aws-us-gov):ecs:(?P<region>[a-z]{2}(-gov)?-[a-z]+-\d{1,2}):"
    r"(?P<account>\d{12}):task/(?P<cluster>[A-Za-z0-9_-]{1,255})/(?P<task>[A-Za-z0-9-]{1,64})$"
)
SHORT_TASK_ARN_RE = re.compile(r"^arn:[a-z-]+:ecs:[a-z0-9-]+:\d{12}:task/[A-Za-z0-9-]{1,64}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


@dataclass(frozen=True)
class ParsedArn:
    region: str
    account_id: str
    cluster: str
    task_id: str


def parse_task_arn(value: str) -> ParsedArn:
    value = value.strip()
    match = TASK_ARN_RE.match(value)
    if match:
        return ParsedArn(match["region"], match["account"], match["cluster"], match["task"])
    if SHORT_TASK_ARN_RE.match(value):
        raise ValidationError(
            "This is an old-format task ARN without the cluster name; pick the task in the inventory instead."
        )
    raise ValidationError(
        "That is not an ECS task ARN; it must look like arn:aws:ecs:eu-west-1:123456789012:task/cluster/0123abcd…"
    )


@dataclass(frozen=True)
class StopTarget:
    account: AwsAccount
    region: str
    cluster: str
    task: records.Task
    role_arn: str

    def as_json(self) -> dict[str, str]:
        return {
            "region": self.region,
            "cluster": self.cluster,
            "task_arn": self.task.arn,
            "service": self.task.service_name,
            "task_definition": self.task.task_definition,
            "role_arn": self.role_arn,
        }

    @property
    def label(self) -> str:
        return f"{self.cluster}/{self.task.id} ({self.task.service_name or 'standalone'}, {self.region})"


def _account_for_arn(user: AbstractBaseUser, parsed: ParsedArn, account_pk: int | None) -> AwsAccount:
    if account_pk is not None:
        account = account_get_for_user(user=user, account_pk=account_pk, min_role=Role.OPERATOR, enabled_only=True)
        if account.account_id != parsed.account_id:
            raise ValidationError(
                {
                    "task_arn": f"This task is in AWS account {parsed.account_id}, but {account.name} is "
                    f"{account.account_id}; choose the matching account or clear the picker."
                }
            )
        return account
    matches = [
        a
        for a in accounts_for_user(user=user, min_role=Role.OPERATOR).filter(is_enabled=True)
        if a.account_id == parsed.account_id
    ]
    if not matches:
        raise ValidationError(
            {
                "task_arn": f"You cannot request stops in AWS account {parsed.account_id}: it is not one of your "
                "accounts with the operator role."
            }
        )
    in_region = [a for a in matches if parsed.region in a.regions]
    if len(in_region) == 1:
        return in_region[0]
    if len(matches) == 1:
        return matches[0]  # the caller then explains that the region is not one of the account's
    raise ValidationError({"account": "Several of your accounts use this AWS account ID; choose one in the picker."})


def stop_target_for_user(
    *,
    user: AbstractBaseUser,
    account_pk: int | None,
    region: str,
    cluster: str,
    task: str,
    task_arn: str,
    role_arn: str,
) -> StopTarget:
    """The task the user means to stop, or ValidationError (by field) saying why not.

    A pasted ARN wins over the picker; its account ID must be the account's own. The rest
    (the gate, the role override, the region, the task's status in ECS) is the one check every
    action on a task goes through, `inventory.selectors.live_task_get_for_user`; a stop takes
    any task that is not stopped or stopping.
    """
    if task_arn:
        parsed = parse_task_arn(task_arn)
        account_pk = _account_for_arn(user, parsed, account_pk).pk
        region, cluster, task = parsed.region, parsed.cluster, parsed.task_id
    elif account_pk is None or not region or not cluster or not task:
        raise ValidationError("Pick account, region, cluster and task, or paste a task ARN.")
    elif not NAME_RE.match(cluster) or not NAME_RE.match(task):
        raise ValidationError("That cluster or task is not valid for this account.")
    live = live_task_get_for_user(
        user=user, account_pk=account_pk, region=region, cluster=cluster, task=task, role_arn=role_arn, running=False
    )
    return StopTarget(
        account=live.account, region=live.region, cluster=live.cluster, task=live.task, role_arn=live.role_arn
    )


def pending_stop_for_task(*, account: AwsAccount, task_arn: str) -> ApprovalRequest | None:
    """A pending stop of this task on this portal account (another account's is none of ours)."""
    return (
        ApprovalRequest.objects.filter(
            account=account, action="ecs.stop_task", status=Status.PENDING, target__task_arn=task_arn
        )
        .order_by("-created_at")
        .first()
    )
