from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ecsportal.accounts.models import Role
from ecsportal.accounts.selectors import accounts_for_user
from ecsportal.audit.forms import AuditFilterForm
from ecsportal.audit.selectors import audit_events_for_user
from ecsportal.ui.forms import valid_filters


@require_GET
def audit_list(request: HttpRequest) -> HttpResponse:
    admin_accounts = accounts_for_user(user=request.user, min_role=Role.ADMIN).order_by("name")
    if not request.user.is_superuser and not admin_accounts.exists():
        raise PermissionDenied("The audit trail is for account admins.")
    allowed = None if request.user.is_superuser else list(admin_accounts.values_list("pk", flat=True))
    filters = valid_filters(AuditFilterForm(request.GET))
    events = audit_events_for_user(
        user=request.user,
        admin_account_pks=allowed,
        account_pk=filters.get("account"),
        action=filters.get("action", ""),
        actor=filters.get("actor", ""),
        text=filters.get("q", ""),
    )
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    context = {"page": page, "accounts": admin_accounts, "filters": request.GET}
    template = "audit/_events.html" if request.htmx else "audit/list.html"
    return render(request, template, context)
