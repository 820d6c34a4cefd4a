from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from ecsportal.accounts.models import Role
from ecsportal.accounts.selectors import user_is_account_admin_anywhere
from ecsportal.approvals import policy
from ecsportal.audit.services import client_ip
from ecsportal.runbooks import selectors, services
from ecsportal.runbooks.forms import OptionFormSet, RunbookForm, RunbookRunForm, validate_runbook
from ecsportal.runbooks.models import Runbook
from ecsportal.runs.services import RunRefused
from ecsportal.ui.http import HtmxHttpRequest


@require_GET
def runbook_list(request: HtmxHttpRequest) -> HttpResponse:
    """The self-service page: runbooks on the user's accounts, and whether they may run each."""
    entries = selectors.runbooks_for_user(user=request.user)
    return render(
        request,
        "runbooks/list.html",
        {
            "entries": entries,
            "can_manage": user_is_account_admin_anywhere(user=request.user),
            "can_run_any": any(e.can_run for e in entries),
        },
    )


def _run_context(
    request: HtmxHttpRequest, entry: selectors.RunbookEntry, form: RunbookRunForm, params: dict[str, str]
) -> dict[str, Any]:
    runbook = entry.runbook
    context = selectors.runbook_picker(user=request.user, runbook=runbook, params=params)
    account = context["account"]
    context.update(
        entry=entry,
        runbook=runbook,
        form=form,
        picker_url=reverse("runbooks:picker", args=[runbook.pk]),
        approvals_required=policy.approvals_required(account=account, policy="runbook")
        if account and runbook.needs_approval
        else 0,
    )
    return context


@sensitive_post_parameters()
@require_http_methods(["GET", "POST"])
def runbook_run(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The runbook's generated form and the target picker (GET); run it (POST) and open the run."""
    entry = selectors.runbook_get_for_user(user=request.user, runbook_pk=pk)
    if request.method == "GET":
        params = request.GET.dict()
        form = RunbookRunForm(runbook=entry.runbook, initial=params)
        return render(request, "runbooks/run.html", _run_context(request, entry, form, params))
    entry = selectors.runbook_get_for_user(user=request.user, runbook_pk=pk, min_role=Role.OPERATOR)
    form = RunbookRunForm(request.POST, runbook=entry.runbook)
    if form.is_valid():
        data = form.cleaned_data
        try:
            run = services.runbook_run(
                actor=request.user,
                runbook=entry.runbook,
                account_pk=data["account"],
                region=data["region"],
                cluster=data["cluster"],
                task=data["task"],
                container=data["container"],
                values=data["values"],
                reason=data["reason"],
                source_ip=client_ip(request),
            )
        except RunRefused as exc:
            form.add_error(None, str(exc))
        else:
            url = reverse("runs:detail", args=[run.pk])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    params = {k: request.POST.get(k, "") for k in ("account", "region", "cluster", "task", "container")}
    # htmx posts the form and swaps what comes back in its place; without JavaScript, the page.
    template = "runbooks/_run_form.html" if request.htmx else "runbooks/run.html"
    return render(request, template, _run_context(request, entry, form, params), status=422)


@require_GET
def runbook_picker(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The picker fragment, offering only the runbook's accounts, clusters and containers."""
    entry = selectors.runbook_get_for_user(user=request.user, runbook_pk=pk)
    context = selectors.runbook_picker(user=request.user, runbook=entry.runbook, params=request.GET.dict())
    context["picker_url"] = reverse("runbooks:picker", args=[pk])
    return render(request, "inventory/_picker_fields.html", context)


# --- management -----------------------------------------------------------------------------


def _options_data(formset: Any) -> list[dict[str, Any]]:
    return [f.cleaned_data for f in formset.kept_forms()]


@require_GET
def manage_list(request: HtmxHttpRequest) -> HttpResponse:
    selectors.check_may_manage(user=request.user)
    return render(
        request,
        "runbooks/manage_list.html",
        {"runbooks": selectors.runbooks_managed_by(user=request.user), "is_portal_admin": request.user.is_superuser},
    )


def _edit(request: HtmxHttpRequest, runbook: Runbook | None) -> HttpResponse:
    instance = runbook or Runbook()
    form = RunbookForm(request.POST or None, instance=instance, user=request.user)
    formset = OptionFormSet(request.POST or None, instance=instance, prefix="options")
    if request.method == "POST":
        if validate_runbook(form, formset):
            data = {k: v for k, v in form.cleaned_data.items() if k != "accounts"}
            accounts = list(form.cleaned_data["accounts"])
            common = {"actor": request.user, "data": data, "accounts": accounts, "source_ip": client_ip(request)}
            if runbook is None:
                saved = services.runbook_create(options=_options_data(formset), **common)
                messages.success(request, f"Runbook “{saved.name}” created.")
            else:
                saved = services.runbook_update(runbook=runbook, options=_options_data(formset), **common)
                messages.success(request, f"Runbook “{saved.name}” saved.")
            url = reverse("runbooks:manage")
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    status = 422 if form.is_bound else 200
    # htmx posts the form and swaps what comes back in its place; without JavaScript, the page.
    template = "runbooks/_manage_form.html" if request.htmx and form.is_bound else "runbooks/manage_form.html"
    return render(request, template, {"form": form, "formset": formset, "runbook": runbook}, status=status)


@require_http_methods(["GET", "POST"])
def manage_create(request: HtmxHttpRequest) -> HttpResponse:
    selectors.check_may_manage(user=request.user)
    return _edit(request, None)


@require_http_methods(["GET", "POST"])
def manage_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    return _edit(request, selectors.runbook_get_for_manager(user=request.user, runbook_pk=pk))


@require_POST
def manage_enabled(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    runbook = selectors.runbook_get_for_manager(user=request.user, runbook_pk=pk)
    enabled = request.POST.get("enabled") == "1"
    services.runbook_set_enabled(actor=request.user, runbook=runbook, enabled=enabled, source_ip=client_ip(request))
    messages.success(request, f"Runbook “{runbook.name}” {'enabled' if enabled else 'disabled'}.")
    return redirect("runbooks:manage")


@require_http_methods(["GET", "POST"])
def manage_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    runbook = selectors.runbook_get_for_manager(user=request.user, runbook_pk=pk)
    if request.method == "POST":
        services.runbook_delete(actor=request.user, runbook=runbook, source_ip=client_ip(request))
        messages.success(request, f"Runbook “{runbook.name}” deleted; its past runs keep its name.")
        return redirect("runbooks:manage")
    return render(request, "runbooks/manage_delete.html", {"runbook": runbook})
