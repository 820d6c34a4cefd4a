"""`{% shell_access_panel account region cluster task %}`: the task page's shell access facts
for the viewer (the policy, grants in force, pending requests, the request link).

`{% shell_action account region cluster task container %}`: "Open a shell" next to an
exec-ready container (the task page, a cluster's task list), as the account's policy says:
nothing for viewers (the task page's panel says why), nor where shells are off; the button
for operators; under "access request", the button while a grant in force covers the container,
else a link to the request form. A page asks once per account, however many rows it lists."""

from __future__ import annotations

from typing import Any

from django import template

from ecsportal.accounts.models import Role, ShellAccess
from ecsportal.accounts.selectors import account_role_for_user
from ecsportal.shells.models import GrantScope
from ecsportal.shells.selectors import (
    cluster_name,
    grants_for_task,
    grants_in_force,
    pending_requests_for_task,
    request_url,
)

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


def _account_facts(request: Any, account: Any) -> tuple[Any, list[Any]]:
    """(the user's role, their grants in force) on this account, read once per page."""
    cache = request.__dict__.setdefault("_shell_facts", {})
    if account.pk not in cache:
        role = account_role_for_user(user=request.user, account=account)
        grants: list[Any] = []
        if role is not None and role >= Role.OPERATOR and account.effective_shell_access == ShellAccess.REQUEST:
            grants = list(grants_in_force(user=request.user, account=account))
        cache[account.pk] = (role, grants)
    return cache[account.pk]


def _covers(grant: Any, *, region: str, cluster: str, task: Any, container: str) -> bool:
    if grant.scope == GrantScope.CONTAINER:
        return grant.task_arn == task.arn and grant.container == container
    return bool(task.service_name) and (grant.region, grant.cluster, grant.service) == (
        region,
        cluster_name(cluster),
        task.service_name,
    )


@register.inclusion_tag("shells/_shell_button.html", takes_context=True)
def shell_action(
    context: dict[str, Any], account: Any, region: str, cluster: str, task: Any, container: Any, compact: bool = False
) -> dict[str, Any]:
    request = context.get("request")
    hidden: dict[str, Any] = {"kind": ""}
    if request is None or task is None or container is None or not account.is_enabled:
        return hidden
    if not task.exec_readiness(container.name).ready:
        return hidden
    mode = account.effective_shell_access
    if mode == ShellAccess.OFF:
        return hidden
    role, grants = _account_facts(request, account)
    if role is None or role < Role.OPERATOR:
        return hidden
    facts = {
        "account": account,
        "region": region,
        "cluster": cluster,
        "task": task,
        "container": container,
        "compact": compact,
        "csrf_token": context.get("csrf_token"),
        "moderated": account.shell_moderated,
    }
    if mode == ShellAccess.REQUEST and not any(
        _covers(g, region=region, cluster=cluster, task=task, container=container.name) for g in grants
    ):
        url = request_url(
            account_pk=account.pk, region=region, cluster=cluster, task_id=task.id, container=container.name
        )
        return {**facts, "kind": "request", "url": url}
    return {**facts, "kind": "open"}
