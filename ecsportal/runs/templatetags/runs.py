from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import template
from django.urls import reverse

from ecsportal.accounts.models import Role
from ecsportal.accounts.selectors import account_role_for_user
from ecsportal.runs.selectors import LiveShell, live_shells_for_user

register = template.Library()


@register.simple_tag(takes_context=True)
def run_url(context: dict[str, Any], account: Any, region: str, cluster: str, task: Any, container: Any) -> str:
    """The run form's URL for an exec-ready container, or "" when this user may not run commands here."""
    request = context.get("request")
    if request is None or task is None or not task.exec_readiness(container.name).ready:
        return ""
    roles = request.__dict__.setdefault("_run_roles", {})  # one role query per page, not per row
    if account.pk not in roles:
        roles[account.pk] = account_role_for_user(user=request.user, account=account)
    role = roles[account.pk]
    if role is None or role < Role.OPERATOR or not account.is_enabled:
        return ""
    query = urlencode(
        {"account": account.pk, "region": region, "cluster": cluster, "task": task.id, "container": container.name}
    )
    return f"{reverse('runs:new')}?{query}"


@register.simple_tag(takes_context=True)
def live_shells(context: dict[str, Any], task: Any) -> list[LiveShell]:
    """The live shells on this task the user may watch, with who is in each (the task page)."""
    request = context.get("request")
    if request is None or task is None:
        return []
    return live_shells_for_user(user=request.user, task_arn=task.arn)
