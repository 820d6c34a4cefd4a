"""Pages of the approval gate. Every view asks `approval_get_for_user` (or the service, which
asks the accounts gate) before it shows or changes anything."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from ecsportal.accounts.models import Role
from ecsportal.accounts.selectors import accounts_for_user
from ecsportal.approvals import registry, selectors, services
from ecsportal.approvals.forms import DecisionForm, RequestFilterForm
from ecsportal.audit.services import client_ip
from ecsportal.context_processors import nav_section
from ecsportal.ui.forms import valid_filters
from ecsportal.ui.http import HtmxHttpRequest
from ecsportal.ui.paging import CappedPaginator

COUNT_CAP = 1_000  # the request list counts at most this many (then pages on without a last page)


def _card_context(request: HtmxHttpRequest, pk: int, **extra: object) -> dict[str, object]:
    approval = selectors.approval_get_for_user(user=request.user, pk=pk)
    try:
        action = registry.get(approval.action)
        consequences, target_url = action.describe(approval), action.target_url(approval)
    except LookupError:
        consequences, target_url = [], ""
    return {
        "consequences": consequences,
        "target_url": target_url,
        "approval": approval,
        "action_label": registry.label_for(approval.action),
        "decisions": selectors.approval_decisions(request=approval),
        "perms": selectors.approval_permissions(user=request.user, request=approval),
        "decision_form": DecisionForm(),
        **extra,
    }


def _card_or_redirect(request: HtmxHttpRequest, pk: int, *, error: str = "", status: int = 200) -> HttpResponse:
    if request.htmx:
        return render(request, "approvals/_approval_card.html", _card_context(request, pk, error=error), status=status)
    if error:
        messages.error(request, error)
    return redirect("approvals:detail", pk=pk)


@require_GET
def approval_inbox(request: HtmxHttpRequest) -> HttpResponse:
    waiting, fyi = selectors.inbox_for_user(user=request.user)
    template = "approvals/_inbox.html" if request.htmx else "approvals/inbox.html"
    return render(request, template, {"waiting": waiting, "fyi": fyi})


@require_GET
def approval_nav(request: HtmxHttpRequest) -> HttpResponse:
    """The navigation entry with its live count (fetched on load and on every inbox change)."""
    is_approver = selectors.user_is_approver_anywhere(user=request.user)
    count = selectors.inbox_count_for_user(user=request.user) if is_approver else 0
    page = (request.htmx.current_url_abs_path if request.htmx else None) or request.path
    active = nav_section(page) == "approvals"
    return render(request, "approvals/_nav.html", {"inbox_count": count, "is_approver": is_approver, "active": active})


@require_GET
def approval_list(request: HtmxHttpRequest) -> HttpResponse:
    filters = valid_filters(RequestFilterForm(request.GET))
    approvals = selectors.requests_for_user(
        user=request.user,
        status=filters.get("status") or "",
        account_pk=filters.get("account"),
        mine=bool(filters.get("mine")),
    )
    page = CappedPaginator(approvals, 50, cap=COUNT_CAP).get_page(request.GET.get("page"))
    context = {"page": page, "filters": request.GET, "accounts": accounts_for_user(user=request.user).order_by("name")}
    context["can_request_stop"] = accounts_for_user(user=request.user, min_role=Role.OPERATOR).exists()
    template = "approvals/_request_rows.html" if request.htmx else "approvals/list.html"
    return render(request, template, context)


@require_GET
def approval_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    context = _card_context(request, pk)
    template = "approvals/_approval_card.html" if request.htmx else "approvals/detail.html"
    return render(request, template, context)


@require_POST
def approval_decide(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    selectors.approval_get_for_user(user=request.user, pk=pk)  # 404 before any form error for outsiders
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _card_or_redirect(request, pk, error="Choose approve or reject.", status=422)
    try:
        approval = services.approval_decide(
            actor=request.user,
            request_pk=pk,
            decision=form.cleaned_data["decision"],
            comment=form.cleaned_data["comment"],
            source_ip=client_ip(request),
        )
    except (services.ApprovalClosed, ValidationError) as exc:
        return _card_or_redirect(request, pk, error=" ".join(getattr(exc, "messages", [str(exc)])), status=409)
    if not request.htmx:
        messages.success(request, f"Request #{approval.pk} is now {approval.get_status_display().lower()}.")
    return _card_or_redirect(request, pk)


@require_POST
def approval_cancel(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    try:
        services.approval_cancel(actor=request.user, request_pk=pk, source_ip=client_ip(request))
    except services.ApprovalClosed as exc:
        return _card_or_redirect(request, pk, error=str(exc), status=409)
    return _card_or_redirect(request, pk)


@require_POST
def approval_acknowledge(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    try:
        services.approval_acknowledge(actor=request.user, request_pk=pk, source_ip=client_ip(request))
    except services.ApprovalClosed as exc:
        return _card_or_redirect(request, pk, error=str(exc), status=409)
    if request.POST.get("next") == "inbox":
        return redirect(reverse("approvals:inbox"))
    return _card_or_redirect(request, pk)
