from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from ecsportal.accounts.models import Role
from ecsportal.accounts.selectors import account_role_for_user, accounts_for_user
from ecsportal.approvals import policy
from ecsportal.approvals.services import ApprovalClosed
from ecsportal.audit.services import client_ip
from ecsportal.inventory.selectors import action_picker_for_user
from ecsportal.stops import services
from ecsportal.stops.executor import consequences
from ecsportal.stops.forms import StopTaskForm
from ecsportal.ui.http import HtmxHttpRequest

ROLE_SELECT_ID = "stop-role"


def _picker_context(request: HtmxHttpRequest, params: dict[str, str]) -> dict[str, object]:
    context = action_picker_for_user(user=request.user, params=params, picker_url=reverse("stops:picker"))
    context["role_select_id"] = ROLE_SELECT_ID
    return context


def _form_context(request: HtmxHttpRequest, form: StopTaskForm, params: dict[str, str]) -> dict[str, object]:
    return {**_picker_context(request, params), "form": form}


def _confirm_context(request: HtmxHttpRequest, form: StopTaskForm) -> dict[str, object]:
    target = form.cleaned_data["target"]
    role = account_role_for_user(user=request.user, account=target.account)
    return {
        "form": form,
        "target": target,
        "consequences": consequences(service=target.task.service_name, task_definition=target.task.task_definition),
        "approvals_required": policy.approvals_required(account=target.account, policy=policy.Policy.STOP),
        "ttl_minutes": target.account.approval_ttl_minutes,
        "can_break_glass": role is not None and role >= Role.ADMIN,
    }


@require_http_methods(["GET", "POST"])
def stop_new(request: HtmxHttpRequest) -> HttpResponse:
    """Pick or paste a task and say why (GET); review what will happen (POST); confirm (POST confirmed=1)."""
    if not accounts_for_user(user=request.user, min_role=Role.OPERATOR).exists():
        # Not an empty picker that then says "pick an account": say what is missing.
        return render(request, "stops/new.html", {"operator_nowhere": True}, status=403)
    params = (request.POST if request.method == "POST" else request.GET).dict()
    form = StopTaskForm(request.POST if request.method == "POST" else None, user=request.user, initial=params)
    if request.method == "POST":
        confirmed = request.POST.get("confirmed") == "1"
        if form.is_valid() and confirmed:
            try:
                approval = services.stop_request(
                    actor=request.user,
                    target=form.cleaned_data["target"],
                    reason=form.cleaned_data["reason"],
                    break_glass=form.cleaned_data["break_glass"],
                    break_glass_reason=form.cleaned_data["break_glass_reason"],
                    source_ip=client_ip(request),
                )
            except (ApprovalClosed, ValidationError) as exc:
                form.add_error(None, " ".join(getattr(exc, "messages", [str(exc)])))
            else:
                return redirect("approvals:detail", pk=approval.pk)
        if "target" in form.cleaned_data and (confirmed or form.is_valid()):
            status = 200 if form.is_valid() else 422
            return render(request, "stops/confirm.html", _confirm_context(request, form), status=status)
    status = 422 if form.is_bound and form.errors else 200
    return render(request, "stops/new.html", _form_context(request, form, params), status=status)


@require_GET
def stop_picker(request: HtmxHttpRequest) -> HttpResponse:
    """The inventory picker limited to accounts where the user may request stops, plus the role list (out of band)."""
    return render(request, "inventory/_action_picker.html", _picker_context(request, request.GET.dict()))
