from __future__ import annotations

import re

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from ecsportal.accounts.models import AwsAccount, Role
from ecsportal.accounts.selectors import account_get_for_user, accounts_for_user, roles_by_account_for_user
from ecsportal.aws.errors import AwsError
from ecsportal.inventory import selectors
from ecsportal.inventory.forms import PickerForm
from ecsportal.ui.http import HtmxHttpRequest

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def _checked(region: str, cluster: str, account_regions: list[str]) -> None:
    if region not in account_regions:
        raise Http404("That region is not enabled for this account.")
    if not _NAME_RE.match(cluster):
        raise Http404("That is not a cluster name.")


def _can_operate(request: HtmxHttpRequest, account: AwsAccount) -> bool:
    """Operator or above on an enabled account: the pages then offer actions (stop, run)."""
    role = roles_by_account_for_user(user=request.user).get(account.pk)
    return account.is_enabled and role is not None and role >= Role.OPERATOR


@require_GET
def overview(request: HtmxHttpRequest) -> HttpResponse:
    account = None
    if request.GET.get("account"):
        account = account_get_for_user(user=request.user, account_pk=request.GET["account"], enabled_only=True)
    regions, summaries = selectors.overview_for_user(user=request.user, account=account)
    accounts = accounts_for_user(user=request.user).order_by("name")
    return render(
        request,
        "inventory/overview.html",
        {"regions": regions, "summaries": summaries, "accounts": accounts, "account": account},
    )


@require_POST
def refresh(request: HtmxHttpRequest, account_pk: int) -> HttpResponse:
    account = account_get_for_user(user=request.user, account_pk=account_pk)
    selectors.inventory_refresh(account=account)
    return redirect(
        request.POST.get("next")
        if str(request.POST.get("next", "")).startswith("/inventory/")
        else reverse("inventory:overview")
    )


@require_GET
def cluster_detail(request: HtmxHttpRequest, account_pk: int, region: str, cluster: str) -> HttpResponse:
    account = account_get_for_user(user=request.user, account_pk=account_pk, enabled_only=True)
    _checked(region, cluster, account.regions)
    context = {
        "account": account,
        "region": region,
        "cluster": cluster,
        "error": None,
        "services": [],
        "groups": {},
        "can_operate": _can_operate(request, account),
    }
    try:
        context["services"] = selectors.services_in_cluster(account=account, region=region, cluster=cluster)
        tasks = selectors.tasks_in_cluster(account=account, region=region, cluster=cluster)
        service = request.GET.get("service", "")
        if service:
            tasks = [t for t in tasks if t.service_name == service]
        context["groups"] = selectors.group_by_service(tasks)
        context["task_count"] = len(tasks)
        context["service_filter"] = service
    except AwsError as exc:
        context["error"] = exc
    return render(request, "inventory/cluster.html", context)


@require_GET
def task_detail(request: HtmxHttpRequest, account_pk: int, region: str, cluster: str, task_id: str) -> HttpResponse:
    account = account_get_for_user(user=request.user, account_pk=account_pk, enabled_only=True)
    _checked(region, cluster, account.regions)
    if not _NAME_RE.match(task_id):
        raise Http404("That is not a task ID.")
    context = {
        "account": account,
        "region": region,
        "cluster": cluster,
        "task": None,
        "error": None,
        "can_operate": _can_operate(request, account),
    }
    try:
        context["task"] = selectors.task_in_cluster(account=account, region=region, cluster=cluster, task_id=task_id)
    except AwsError as exc:
        context["error"] = exc
    return render(request, "inventory/task.html", context)


@require_GET
def picker(request: HtmxHttpRequest) -> HttpResponse:
    """The cascading picker, re-rendered with each choice (HTMX); later forms embed it."""
    picker = selectors.picker_get_for_user(user=request.user, form=PickerForm(request.GET))
    context = {**picker.as_context(), "picker_url": reverse("inventory:picker")}
    template = "inventory/_picker_fields.html" if request.htmx else "inventory/pick.html"
    return render(request, template, context)
