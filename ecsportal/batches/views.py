"""The batch pages: "Run on many" (filter, preview, options, start), a batch live, the list,
cancel all, re-run the failed, and the downloads. Thin: the services decide, the selectors read."""

from __future__ import annotations

import json

from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from ecsportal.accounts.models import Role
from ecsportal.accounts.selectors import accounts_for_user
from ecsportal.audit.services import audit_record, client_ip
from ecsportal.batches import selectors, services
from ecsportal.batches.forms import BatchForm
from ecsportal.batches.models import BatchStatus, BatchTarget
from ecsportal.runbooks.forms import RunbookRunForm
from ecsportal.runbooks.selectors import runbook_get_for_user
from ecsportal.ui.http import HtmxHttpRequest
from ecsportal.ui.paging import CappedPaginator

PAGE_SIZE = 25
PREVIEW_ROWS = 500  # the preview lists at most this many of each kind (the counts are exact)


@require_GET
def batch_list(request: HtmxHttpRequest) -> HttpResponse:
    targets = (
        BatchTarget.objects.filter(batch=OuterRef("pk"), in_target_list=True)
        .values("batch")
        .annotate(n=Count("pk"))
        .values("n")
    )
    batches = (
        selectors.batches_for_user(user=request.user)
        .select_related("requested_by")
        .annotate(n_targets=Subquery(targets, output_field=IntegerField()))
        .order_by("-created_at", "-id")
    )
    page = CappedPaginator(batches, PAGE_SIZE, cap=1_000).get_page(request.GET.get("page"))
    can_start = accounts_for_user(user=request.user, min_role=Role.OPERATOR).filter(is_enabled=True).exists()
    return render(request, "batches/list.html", {"page": page, "can_start": can_start})


def _runbook(request: HtmxHttpRequest, data: dict[str, str]):
    pk = data.get("runbook", "")
    if not pk:
        return None
    return runbook_get_for_user(user=request.user, runbook_pk=pk, min_role=Role.OPERATOR).runbook


def _runbook_values(runbook, data) -> dict[str, object]:
    return {spec.name: data.get("opt_" + spec.name) for spec in runbook.option_specs()}


@sensitive_post_parameters()
@require_http_methods(["GET", "POST"])
def batch_new(request: HtmxHttpRequest) -> HttpResponse:
    """The form (GET, prefilled from the query string: the run form's command, a service's
    filter, a runbook); POST "preview" shows what the filter matches, POST "start" starts it."""
    accounts = list(
        accounts_for_user(user=request.user, min_role=Role.OPERATOR).filter(is_enabled=True).order_by("name")
    )
    if not accounts:
        return render(request, "batches/new.html", {"accounts": []}, status=403)
    source = request.POST if request.method == "POST" else request.GET
    runbook = _runbook(request, source)
    if request.method == "GET":
        initial = {k: v for k, v in request.GET.items() if k != "accounts"}
        initial["accounts"] = request.GET.getlist("accounts") or request.GET.getlist("account")
        form = BatchForm(initial=initial, accounts=accounts)
        context = {"form": form, "accounts": accounts, "runbook": runbook}
        if runbook is not None:
            context["runbook_form"] = RunbookRunForm(runbook=runbook, initial=initial)
        return render(request, "batches/new.html", context)
    form = BatchForm(request.POST, accounts=accounts)
    context = {"form": form, "accounts": accounts, "runbook": runbook}
    if runbook is not None:
        context["runbook_form"] = RunbookRunForm(request.POST, runbook=runbook)
    status = 200
    if form.is_valid():
        action = request.POST.get("action", "preview")
        try:
            if action == "start":
                batch = services.batch_start(
                    user=request.user,
                    spec=form.spec(expect=True),
                    command=None if runbook else form.cleaned_data["command"],
                    runbook=runbook,
                    values=_runbook_values(runbook, request.POST) if runbook else None,
                    options=form.options(),
                    reason=form.cleaned_data["reason"],
                    source_ip=client_ip(request),
                )
                url = reverse("batches:detail", args=[batch.pk])
                return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
            preview = services.batch_preview(user=request.user, spec=form.spec(), runbook=runbook)
            context.update(preview=preview, preview_rows=PREVIEW_ROWS)
            form.data = form.data.copy()
            form.data["targets_sha256"] = preview.targets_sha256  # what "Start" will insist on
        except services.BatchRefused as exc:
            form.add_error(None, str(exc))
            status = 422
    else:
        status = 422
    template = "batches/_form.html" if request.htmx else "batches/new.html"
    return render(request, template, context, status=status)


def _live_context(request: HtmxHttpRequest, batch) -> dict[str, object]:
    targets = selectors.targets_of(batch)
    groups = selectors.output_groups(targets)
    return {
        "batch": batch,
        "targets": targets,
        "counts": sorted(selectors.counts_by_outcome(targets).items()),
        "groups": [(g, *selectors.group_sample(g)) for g in groups],
        "listed": [t for t in targets if t.in_target_list],
        "skipped_at_preview": [t for t in targets if not t.in_target_list],
        "failed": selectors.failed_count(targets),
        "can_operate": selectors.can_operate(user=request.user, batch=batch),
        "live": not batch.is_finished,
    }


@require_GET
def batch_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    batch = selectors.batch_get_for_user(user=request.user, pk=pk)
    context = _live_context(request, batch)
    if request.htmx and not request.htmx.boosted:
        return render(request, "batches/_live.html", context)
    return render(request, "batches/detail.html", context)


@require_POST
def batch_cancel(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    batch = selectors.batch_get_for_user(user=request.user, pk=pk, min_role=Role.OPERATOR)
    try:
        services.batch_cancel(user=request.user, batch=batch, source_ip=client_ip(request))
    except services.BatchRefused as exc:
        return render(request, "batches/_error.html", {"message": str(exc)}, status=422)
    url = reverse("batches:detail", args=[batch.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
def batch_rerun(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    batch = selectors.batch_get_for_user(user=request.user, pk=pk, min_role=Role.OPERATOR)
    try:
        new = services.batch_rerun_failed(user=request.user, batch=batch, source_ip=client_ip(request))
    except services.BatchRefused as exc:
        return render(request, "batches/_error.html", {"message": str(exc)}, status=422)
    url = reverse("batches:detail", args=[new.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _downloaded(request: HtmxHttpRequest, batch, fmt: str) -> None:
    for account in {t.account.pk: t.account for t in batch.targets.select_related("account")}.values():
        audit_record(
            actor=request.user,
            action="batch.transcript_downloaded",
            target=f"batch #{batch.pk}",
            account=account,
            details={"batch": batch.pk, "format": fmt},
            source_ip=client_ip(request),
        )


@require_GET
def batch_transcript(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Every target's output, each line prefixed with its target (operators, audited, as runs')."""
    batch = selectors.batch_get_for_user(user=request.user, pk=pk, min_role=Role.OPERATOR)
    _downloaded(request, batch, "text")
    response = StreamingHttpResponse(selectors.combined_transcript(batch), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="batch-{batch.pk}.txt"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
def batch_summary_json(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The JSON summary (no output in it: statuses, exit codes, sizes, groups)."""
    batch = selectors.batch_get_for_user(user=request.user, pk=pk)
    response = HttpResponse(json.dumps(selectors.batch_summary(batch), indent=2), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="batch-{batch.pk}.json"'
    return response


STATUS_CHOICES = BatchStatus.choices
