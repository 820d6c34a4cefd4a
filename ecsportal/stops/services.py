"""Requesting a stop: the target checked by the selector, then handed to the approval gate."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser

from ecsportal.approvals.models import ApprovalRequest
from ecsportal.approvals.services import ApprovalClosed, approval_request
from ecsportal.stops.executor import ACTION
from ecsportal.stops.selectors import StopTarget, pending_stop_for_task


def stop_request(
    *,
    actor: AbstractBaseUser,
    target: StopTarget,
    reason: str,
    break_glass: bool = False,
    break_glass_reason: str = "",
    source_ip: str | None = None,
) -> ApprovalRequest:
    pending = pending_stop_for_task(account=target.account, task_arn=target.task.arn)
    if pending is not None and pending.is_open and not break_glass:
        raise ApprovalClosed(f"Request #{pending.pk} to stop this task is already waiting for approval.")
    return approval_request(
        actor=actor,
        action=ACTION,
        account=target.account,
        target=target.as_json(),
        target_label=target.label,
        reason=reason,
        break_glass=break_glass,
        break_glass_reason=break_glass_reason,
        source_ip=source_ip,
    )
