"""`{% shell_access_panel account region cluster task %}`: the task page's shell access facts
for the viewer (the policy, grants in force, pending requests, the request link)."""

from __future__ import annotations

from typing import Any

from django import template

from ecsportal.accounts.models import Role, ShellAccess
from ecsportal.accounts.selectors import account_role_for_user
from ecsportal.shells.selectors import grants_for_task, pending_requests_for_task, request_url

register = template.Library()


@register.inclusion_tag("shells/_task_access.html", takes_context=True)
def shell_access_panel(context: dict[str, Any], account: Any, region: str, cluster: str, task: Any) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or task is None:
        return {"show": False}
    role = account_role_for_user(user=user, account=account)
    mode = account.effective_shell_access
    running = task.last_status == "RUNNING" and task.desired_status != "STOPPED"
    is_operator = role is not None and role >= Role.OPERATOR
    facts: dict[str, Any] = {"show": True, "mode": mode.value, "mode_label": mode.label, "is_operator": is_operator}
    if mode == ShellAccess.REQUEST and is_operator:
        facts["grants"] = grants_for_task(user=user, account=account, task=task, region=region, cluster=cluster)
        facts["pending"] = pending_requests_for_task(user=user, account=account, task_arn=task.arn)
        facts["request_url"] = (
            request_url(account_pk=account.pk, region=region, cluster=cluster, task_id=task.id) if running else ""
        )
    facts["moderated"] = account.shell_moderated
    return facts
