from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from ecsportal.accounts.models import Role
from ecsportal.accounts.selectors import roles_by_account_for_user
from ecsportal.audit.services import client_ip
from ecsportal.stopped import categories, selectors, services
from ecsportal.stopped.forms import StatusForm, StoppedFilterForm, StoppedFilters
from ecsportal.stopped.models import CollectionRun, StoppedTask
from ecsportal.stopped.status import collection_status_for_user
from ecsportal.ui.forms import valid_filters
from ecsportal.ui.http import HtmxHttpRequest

EXPORT_CHUNK = 2000


def _filters_for(request: HtmxHttpRequest) -> StoppedFilters:
    return StoppedFilterForm(request.GET).filters()


def _wants_fragment(request: HtmxHttpRequest) -> bool:
    htmx = request.htmx
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


@require_GET
def stopped_list(request: HtmxHttpRequest) -> HttpResponse:
    """The on-call view: failure signatures, the chart, then the table; HTMX swaps the results."""
    fragment = _wants_fragment(request)
    # The whole page reads the user's accounts once, for the menus and the rows.
    choices = None if fragment else selectors.filter_choices_for_user(user=request.user)
    found = selectors.stopped_page_for_user(
        user=request.user, filters=_filters_for(request), account_pks=choices.account_pks if choices else None
    )
    context = {"filters": found.filters, "page": found.page, "signatures": found.signatures, "chart": found.chart}
    if fragment:
        return render(request, "stopped/_results.html", context)
    context["choices"] = choices
    context["status"] = collection_status_for_user(user=request.user)
    return render(request, "stopped/list.html", context)


def _live_links(request: HtmxHttpRequest, task: StoppedTask) -> dict[str, str]:
    """Where the task's cluster, service and task live in the inventory, and the run form set
    to its cluster (the picker then lists that service's live tasks); empty where the inventory
    would refuse: a disabled account, a region no longer enabled, a run without the operator role."""
    account = task.account
    if not account.is_enabled or task.region not in account.regions:
        return {}
    where = (account.pk, task.region, task.cluster)
    links = {
        "cluster": reverse("inventory:cluster", args=where),
        "task": reverse("inventory:task", args=(*where, task.task_id)),
    }
    if task.service:
        links["service"] = links["cluster"] + "?" + urlencode({"service": task.service})
        role = roles_by_account_for_user(user=request.user).get(account.pk)
        if role is not None and role >= Role.OPERATOR:
            picker = {"account": account.pk, "region": task.region, "cluster": task.cluster}
            links["run"] = reverse("runs:new") + "?" + urlencode(picker)
    return links


def _approval_url(task: StoppedTask) -> str:
    """The approval request a portal stop names in its reason (its page applies its own gate)."""
    found = categories.PORTAL_REASON.match(task.stopped_reason or "")
    return reverse("approvals:detail", args=(int(found[1]),)) if found else ""


@require_GET
def stopped_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    task = selectors.stopped_task_get_for_user(user=request.user, pk=pk)
    same = selectors.stopped_tasks_for_user(
        user=request.user, filters=StoppedFilters(signature=task.signature, range="all")
    )
    context = {
        "task": task,
        "category": task.explanation,
        "containers": [{**c, "meaning": categories.exit_code_meaning(c.get("exit_code"))} for c in task.containers],
        "same_signature": selectors.stopped_count(same),
        "same_signature_query": StoppedFilters(signature=task.signature, range="all").query(),
        "live": _live_links(request, task),
        "approval_url": _approval_url(task),
    }
    return render(request, "stopped/detail.html", context)


@require_GET
def stopped_status(request: HtmxHttpRequest) -> HttpResponse:
    """The collection status fragment; polled every second while a run is in progress."""
    return _status_fragment(request)


def _status_fragment(request: HtmxHttpRequest) -> HttpResponse:
    response = render(request, "stopped/_status.html", {"status": collection_status_for_user(user=request.user)})
    watched = valid_filters(StatusForm(request.GET)).get("run")
    if watched is not None and CollectionRun.objects.filter(pk=watched, finished_at__isnull=False).exists():
        trigger_client_event(response, "stopped-collected")  # the results reload themselves
    return response


@require_POST
def stopped_refresh(request: HtmxHttpRequest) -> HttpResponse:
    services.stopped_refresh_request(user=request.user, source_ip=client_ip(request))
    if request.htmx:
        return _status_fragment(request)
    return redirect("stopped:list")


_CSV_COLUMNS = [
    "stopped_at",
    "account",
    "account_id",
    "region",
    "cluster",
    "task_arn",
    "service",
    "task_definition",
    "launch_type",
    "capacity_provider",
    "platform_version",
    "availability_zone",
    "started_by",
    "started_at",
    "stop_code",
    "category",
    "stopped_reason",
    "containers",
    "first_seen_at",
    "last_seen_at",
]


def _export_record(task: StoppedTask) -> dict[str, Any]:
    return {
        "stopped_at": task.stopped_at,
        "account": task.account.name,
        "account_id": task.account.account_id,
        "region": task.region,
        "cluster": task.cluster,
        "task_arn": task.task_arn,
        "service": task.service,
        "task_definition": task.task_definition,
        "launch_type": task.launch_type,
        "capacity_provider": task.capacity_provider,
        "platform_version": task.platform_version,
        "availability_zone": task.availability_zone,
        "started_by": task.started_by,
        "started_at": task.started_at,
        "stop_code": task.stop_code,
        "category": task.category,
        "stopped_reason": task.stopped_reason,
        "containers": task.containers,
        "first_seen_at": task.first_seen_at,
        "last_seen_at": task.last_seen_at,
    }


def _export_rows(request: HtmxHttpRequest) -> Iterator[StoppedTask]:
    qs = selectors.stopped_tasks_for_user(user=request.user, filters=_filters_for(request))
    return qs.select_related("account").defer("search_text").iterator(chunk_size=EXPORT_CHUNK)


def _cell(value: Any) -> str:
    """Spreadsheets run cells that start with = + - @ as formulas; AWS text is not to be trusted."""
    text = "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _containers_cell(containers: list[dict]) -> str:
    return " | ".join(
        f"{c.get('name', '')}: exit {c.get('exit_code') if c.get('exit_code') is not None else '—'}"
        + (f" ({c['reason']})" if c.get("reason") else "")
        for c in containers
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


def _filename(extension: str) -> str:
    return f"stopped-tasks-{timezone.now():%Y%m%d-%H%M%S}.{extension}"


@require_GET
def stopped_export_csv(request: HtmxHttpRequest) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(_CSV_COLUMNS)
        for task in _export_rows(request):
            record = _export_record(task)
            record["containers"] = _containers_cell(task.containers)
            yield writer.writerow([_cell(record[c]) for c in _CSV_COLUMNS])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename("csv")}"'
    return response


@require_GET
def stopped_export_json(request: HtmxHttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[str]:
        yield "["
        for index, task in enumerate(_export_rows(request)):
            yield ("," if index else "") + "\n" + json.dumps(_export_record(task), cls=DjangoJSONEncoder)
        yield "\n]\n"

    response = StreamingHttpResponse(chunks(), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{_filename("json")}"'
    return response
