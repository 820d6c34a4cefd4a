"""The stop action as the approval gate sees it: what will happen, and doing it once."""

from __future__ import annotations

from django.urls import reverse

from ecsportal.accounts.selectors import account_allows_role_arn
from ecsportal.approvals.models import ApprovalRequest
from ecsportal.approvals.registry import Outcome
from ecsportal.approvals.selectors import approval_approver_names
from ecsportal.aws import ecs
from ecsportal.aws.errors import AwsError
from ecsportal.inventory.selectors import inventory_refresh
from ecsportal.stops.reason import stop_reason

ACTION = "ecs.stop_task"


def consequences(*, service: str, task_definition: str = "") -> list[str]:
    """What stopping this task does, in the order it happens (the confirmation page and the request page)."""
    lines = [
        "ECS sends each container its stop signal (SIGTERM unless the image sets another), then SIGKILL "
        "after the stop timeout (30 seconds unless the task definition sets stopTimeout).",
    ]
    if service:
        lines.append(
            f"The task belongs to service {service}: the service scheduler will start a replacement to keep "
            "the desired count."
        )
    else:
        lines.append(
            "This is a standalone task (not part of a service): nothing will replace it"
            + (f"; start {task_definition} again yourself if needed." if task_definition else ".")
        )
    lines.append("Stopping deletes the task's tags.")
    return lines


def stop_task_describe(request: ApprovalRequest) -> list[str]:
    target = request.target
    return consequences(service=target.get("service", ""), task_definition=target.get("task_definition", ""))


def stop_task_url(request: ApprovalRequest) -> str:
    target = request.target
    return reverse(
        "inventory:task",
        args=[request.account_id, target["region"], target["cluster"], target["task_arn"].rsplit("/", 1)[-1]],
    )


def stop_task_execute(request: ApprovalRequest) -> Outcome:
    """Called by the gate exactly once per request, outside any transaction."""
    target = request.target
    account = request.account
    region, cluster, task_arn = target["region"], target["cluster"], target["task_arn"]
    role = target.get("role_arn") or ""
    if not account_allows_role_arn(account=account, role_arn=role):
        return Outcome(False, f"The role {role} is no longer allowed on {account.name}; nothing was stopped.")
    try:
        config = account.aws_config()  # an unreadable stored secret is an AwsError like any other
        found = ecs.describe_tasks(config, region, cluster, [task_arn], role_arn=role or None)
        current = next((t for t in found if t.arn == task_arn), None)
        if current is None:
            return Outcome(
                False,
                f"Not found: task {task_arn.rsplit('/', 1)[-1]} is no longer in cluster {cluster}; "
                "it may have stopped over an hour ago. Nothing was stopped.",
            )
        if current.last_status == "STOPPED":
            why = ": ".join(x for x in (current.stop_code, current.stopped_reason) if x)
            return Outcome(False, f"The task had already stopped{f' ({why})' if why else ''}; nothing was done.")
        reason = stop_reason(
            request_id=request.pk,
            reason=request.reason,
            requester=request.requester.get_username(),
            approvers=approval_approver_names(request=request),
            break_glass=request.break_glass,
        )
        stopped = ecs.stop_task(config, region, cluster, task_arn, reason=reason, role_arn=role or None)
    except AwsError as exc:
        return Outcome(False, str(exc))
    finally:
        inventory_refresh(account=account)
    return Outcome(
        True,
        f"ECS accepted the stop: the task is now {stopped.last_status.lower()} "
        f"(desired {stopped.desired_status.lower()}). Stop reason: “{reason}”",
    )
