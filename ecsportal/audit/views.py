from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from ecsportal.accounts.models import AwsAccount, Role
from ecsportal.accounts.selectors import accounts_for_user
from ecsportal.audit.forms import AuditFilterForm
from ecsportal.audit.models import AuditEvent
from ecsportal.audit.selectors import audit_action_choices, audit_events_for_user
from ecsportal.audit.services import audit_record, client_ip
from ecsportal.ui.forms import valid_filters
from ecsportal.ui.http import HtmxHttpRequest
from ecsportal.ui.paging import CappedPaginator

PAGE_SIZE = 50
COUNT_CAP = 1_000  # past this the page says "1,000+ events" instead of counting them all
EXPORT_CHUNK = 2000
CSV_COLUMNS = ["time", "user", "address", "account", "account_pk", "action", "target", "details"]


def _scope(request: HtmxHttpRequest) -> tuple[QuerySet[AwsAccount], list[int] | None]:
    """The accounts whose events this user may read (None: all, for superusers), or 403."""
    admin_accounts = accounts_for_user(user=request.user, min_role=Role.ADMIN).order_by("name")
    if not request.user.is_superuser and not admin_accounts.exists():
        raise PermissionDenied("The audit trail is for account admins.")
    allowed = None if request.user.is_superuser else list(admin_accounts.values_list("pk", flat=True))
    return admin_accounts, allowed


def _events(request: HtmxHttpRequest, allowed: list[int] | None) -> tuple[QuerySet[AuditEvent], dict[str, Any]]:
    filters = valid_filters(AuditFilterForm(request.GET))
    events = audit_events_for_user(
        user=request.user,
        admin_account_pks=allowed,
        account_pk=filters.get("account"),
        action=filters.get("action", ""),
        actor=filters.get("actor", ""),
        since=filters.get("since"),
        until=filters.get("until"),
        text=filters.get("q", ""),
    )
    return events, filters


@require_GET
def audit_list(request: HtmxHttpRequest) -> HttpResponse:
    admin_accounts, allowed = _scope(request)
    events, _ = _events(request, allowed)
    page = CappedPaginator(events, PAGE_SIZE, cap=COUNT_CAP).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "accounts": admin_accounts,
        "filters": request.GET,
        "query": query.urlencode(),
        "actions": audit_action_choices(admin_account_pks=allowed),
    }
    template = "audit/_events.html" if request.htmx else "audit/list.html"
    return render(request, template, context)


def spreadsheet_cell(value: Any) -> str:
    """Spreadsheets run cells that start with = + - @ (or a tab or CR before one) as formulas;
    a quote in front makes them text. Targets, reasons and commands are people's and AWS's text."""
    text = "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def _details_cell(details: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in details.items())


@require_GET
def audit_export_csv(request: HtmxHttpRequest) -> StreamingHttpResponse:
    """The filtered trail as CSV, every matching row (not only the page). Reading the trail in
    bulk is itself recorded."""
    _, allowed = _scope(request)
    events, filters = _events(request, allowed)
    with transaction.atomic():
        audit_record(
            actor=request.user,
            action="audit.exported",
            target="audit trail (CSV)",
            details={k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in filters.items()},
            source_ip=client_ip(request),
        )
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(CSV_COLUMNS)
        for event in events.iterator(chunk_size=EXPORT_CHUNK):
            row = [
                event.created_at,
                event.actor_username,
                event.source_ip,
                event.account_name,
                event.account_pk,
                event.action,
                event.target,
                _details_cell(event.details),
            ]
            yield writer.writerow([spreadsheet_cell(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{timezone.now():%Y%m%d-%H%M%S}.csv"'
    return response
