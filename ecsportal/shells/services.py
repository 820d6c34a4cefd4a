"""Asking for shell access: the target checked by the selector, then handed to the approval gate."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError

from ecsportal.accounts.models import ShellAccess
from ecsportal.approvals.models import ApprovalRequest
from ecsportal.approvals.services import ApprovalClosed, approval_request
from ecsportal.shells.selectors import ACTION, ShellTarget, grant_max_minutes, pending_requests_for_task


def shell_access_request(
    *,
    actor: AbstractBaseUser,
    target: ShellTarget,
    minutes: int,
    reason: str,
    break_glass: bool = False,
    break_glass_reason: str = "",
    source_ip: str | None = None,
) -> ApprovalRequest:
    """Ask for shells on `target` for `minutes`; break-glass (admins, with a written reason) grants at once."""
    account = target.account
    mode = account.effective_shell_access
    if mode == ShellAccess.OFF:
        raise ValidationError(f"Shells are turned off on {account.name}; an account admin can allow them.")
    if mode == ShellAccess.OPERATORS:
        raise ValidationError(f"Operators on {account.name} open shells without asking; no request is needed.")
    if not 1 <= minutes <= grant_max_minutes():
        raise ValidationError(f"Ask for 1 to {grant_max_minutes()} minutes.")
    pending = [
        r
        for r in pending_requests_for_task(user=actor, account=account, task_arn=target.task.arn)
        if r.target.get("container") == target.container and r.target.get("scope") == target.scope
    ]
    if pending and not break_glass:
        raise ApprovalClosed(f"Your request #{pending[0].pk} for this target is already waiting for approval.")
    return approval_request(
        actor=actor,
        action=ACTION,
        account=account,
        target=target.as_json(minutes=minutes),
        target_label=f"{target.label} for {minutes} min",
        reason=reason,
        break_glass=break_glass,
        break_glass_reason=break_glass_reason,
        source_ip=source_ip,
    )
