"""The shell access request form: reached from the task page, or from a refused shell's link."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from ecsportal.accounts.models import Role
from ecsportal.accounts.selectors import account_role_for_user, accounts_for_user
from ecsportal.approvals import policy
from ecsportal.approvals.services import ApprovalClosed
from ecsportal.audit.services import client_ip
from ecsportal.inventory.selectors import live_task_get_for_user
from ecsportal.shells import services
from ecsportal.shells.forms import ShellAccessRequestForm
from ecsportal.ui.http import HtmxHttpRequest


def _task_context(request: HtmxHttpRequest, params: dict[str, str]) -> dict[str, object]:
    """The task the form is about, read live, so the page can list its containers."""
    try:
        live = live_task_get_for_user(
            user=request.user,
            account_pk=int(params.get("account", "")),
            region=params.get("region", ""),
            cluster=params.get("cluster", ""),
            task=params.get("task", ""),
        )
    except (ValueError, TypeError):
        return {"task_error": "Say which task: open it in the inventory and choose “Request shell access…” there."}
    except ValidationError as exc:
        return {"task_error": " ".join(exc.messages)}
    except (Http404, PermissionDenied) as exc:
        return {"task_error": str(exc) or "You may not ask for shells on this account."}
    role = account_role_for_user(user=request.user, account=live.account)
    return {
        "live": live,
        "approvals_required": policy.approvals_required(account=live.account, policy=policy.Policy.SHELL),
        "can_break_glass": role is not None and role >= Role.ADMIN,
    }


@require_http_methods(["GET", "POST"])
def shell_request(request: HtmxHttpRequest) -> HttpResponse:
    if not accounts_for_user(user=request.user, min_role=Role.OPERATOR).exists():
        return render(request, "shells/request.html", {"operator_nowhere": True}, status=403)
    params = (request.POST if request.method == "POST" else request.GET).dict()
    form = ShellAccessRequestForm(request.POST if request.method == "POST" else None, user=request.user, initial=params)
    if request.method == "POST" and form.is_valid():
        try:
            approval = services.shell_access_request(
                actor=request.user,
                target=form.cleaned_data["target"],
                minutes=form.cleaned_data["minutes"],
                reason=form.cleaned_data["reason"],
                break_glass=form.cleaned_data["break_glass"],
                break_glass_reason=form.cleaned_data["break_glass_reason"],
                source_ip=client_ip(request),
            )
        except (ApprovalClosed, ValidationError, PermissionDenied) as exc:
            form.add_error(None, " ".join(getattr(exc, "messages", [str(exc)])))
        else:
            return redirect("approvals:detail", pk=approval.pk)
    context = {"form": form, "params": params, **_task_context(request, params)}
    status = 422 if form.is_bound and form.errors else 200
    return render(request, "shells/request.html", context, status=status)
