from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import template
from django.urls import reverse

from ecsportal.accounts.models import Role
from ecsportal.accounts.selectors import account_role_for_user

register = template.Library()

_GONE = {"STOPPING", "DEPROVISIONING", "STOPPED", "DELETED"}


@register.simple_tag(takes_context=True)
def stop_url(context: dict[str, Any], account: Any, region: str, cluster: str, task: Any) -> str:
    """The stop form's URL for a running task, or "" when this user may not request stops here."""
    request = context.get("request")
    if request is None or task is None or task.last_status in _GONE or task.desired_status == "STOPPED":
        return ""
    roles = request.__dict__.setdefault("_stop_roles", {})  # one role query per page, not per row
    if account.pk not in roles:
        roles[account.pk] = account_role_for_user(user=request.user, account=account)
    role = roles[account.pk]
    if role is None or role < Role.OPERATOR or not account.is_enabled:
        return ""
    query = urlencode({"account": account.pk, "region": region, "cluster": cluster, "task": task.id})
    return f"{reverse('stops:new')}?{query}"
