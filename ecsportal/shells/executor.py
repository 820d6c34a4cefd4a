"""The shell access action as the approval gate sees it: what a grant allows, and granting it once."""

from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from ecsportal.accounts.models import Role, ShellAccess
from ecsportal.accounts.selectors import account_role_for_user
from ecsportal.approvals.models import ApprovalRequest
from ecsportal.approvals.registry import Outcome
from ecsportal.shells.models import GrantScope, ShellGrant
from ecsportal.shells.selectors import ACTION, grant_max_minutes

__all__ = ["ACTION", "shell_access_describe", "shell_access_execute", "shell_access_url"]


def _what(target: dict) -> str:
    if target.get("scope") == GrantScope.SERVICE:
        return f"any container of any task of service {target.get('service')} in cluster {target.get('cluster')}"
    task_id = str(target.get("task_arn", "")).rsplit("/", 1)[-1]
    return f"container {target.get('container')} of task {task_id} in cluster {target.get('cluster')}"


def shell_access_describe(request: ApprovalRequest) -> list[str]:
    target, account = request.target, request.account
    minutes = int(target.get("minutes") or 0)
    lines = [
        f"If approved, {request.requester.get_username()} may open interactive shells (typing commands "
        f"as the container's user) on {_what(target)} for {minutes} minutes from the approval.",
        f"Each shell ends after {account.shell_idle_minutes} idle minutes, after {account.shell_max_minutes} "
        "minutes at most, and when the grant expires.",
    ]
    if account.shell_moderated:
        lines.append("Shells on this account are moderated: input is accepted only while an approver watches.")
    lines.append(
        "Output is recorded; so is what is typed."
        if account.shell_record_input
        else "Output is recorded; what is typed is not."
    )
    return lines


def shell_access_url(request: ApprovalRequest) -> str:
    target = request.target
    return reverse(
        "inventory:task",
        args=[request.account_id, target["region"], target["cluster"], str(target["task_arn"]).rsplit("/", 1)[-1]],
    )


def shell_access_execute(request: ApprovalRequest) -> Outcome:
    """Called by the gate exactly once per request, outside any transaction: leaves the grant."""
    account, requester, target = request.account, request.requester, request.target
    role = account_role_for_user(user=requester, account=account)
    if role is None or role < Role.OPERATOR:
        return Outcome(
            False, f"{requester.get_username()} is no longer an operator on {account.name}; no access given."
        )
    if account.effective_shell_access == ShellAccess.OFF:
        return Outcome(False, f"Shells have been turned off on {account.name}; no access given.")
    minutes = min(max(1, int(target.get("minutes") or 0)), grant_max_minutes())
    now = timezone.now()
    grant = ShellGrant.objects.create(
        request=request,
        account=account,
        user=requester,
        scope=target.get("scope") or GrantScope.CONTAINER,
        region=target["region"],
        cluster=target["cluster"],
        service=target.get("service") or "",
        task_arn=target.get("task_arn") or "",
        container=target.get("container") or "",
        granted_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    until = timezone.localtime(grant.expires_at)
    return Outcome(
        True,
        f"Shell access granted to {requester.get_username()} on {_what(target)} until "
        f"{until:%H:%M} {until.tzname()} ({minutes} minutes).",
    )
