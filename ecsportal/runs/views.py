from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from ecsportal.accounts.models import Role
from ecsportal.accounts.selectors import account_role_for_user, accounts_for_user
from ecsportal.approvals.policy import Policy, approvals_required
from ecsportal.audit.services import client_ip
from ecsportal.inventory.selectors import action_picker_for_user
from ecsportal.runs import interactive, services, transcript
from ecsportal.runs.forms import RunCommandForm, RunFilterForm, ShellOpenForm
from ecsportal.runs.models import Run, RunMode, RunStatus
from ecsportal.runs.selectors import (
    RunFilters,
    run_choices_for_user,
    run_chunks,
    run_get_for_user,
    runs_filtered_for_user,
    session_events,
)
from ecsportal.runs.slots import run_waiting_reason
from ecsportal.ui.forms import valid_filters
from ecsportal.ui.http import HtmxHttpRequest
from ecsportal.ui.paging import CappedPaginator

PAGE_SIZE = 25
COUNT_CAP = 1_000  # past this many runs the history says "1,000+" instead of counting them all
SCROLLBACK_LINES = 20_000  # the run page's terminal keeps this many lines; the transcript keeps all
FILTERS = ("account", "cluster", "user", "status")
# What the history's table shows (runs/_run_results.html): the sealed command, the hashes and
# the accounts' and users' other columns stay in the database.
LIST_COLUMNS = (
    "created_at",
    "status",
    "exit_code",
    "mode",
    "command",
    "interactive",  # Run.command_label names the automatic shell
    "runbook_name",
    "account__name",
    "region",
    "cluster",
    "task_arn",
    "container",
    "requested_by__username",
    "bytes_out",
)


def _filters(request: HtmxHttpRequest) -> dict[str, str]:
    """The valid filters as text (what the template compares with); a crafted account ID such
    as `²` (a digit to str.isdigit, not to int) or one past the database's integers is dropped."""
    valid = valid_filters(RunFilterForm(request.GET))
    return {name: str(valid.get(name, "")).strip() for name in FILTERS}


@require_GET
def run_list(request: HtmxHttpRequest) -> HttpResponse:
    """Runs on the user's accounts, newest first, filtered and paged (the page or, for HTMX, #run-results)."""
    filters = _filters(request)
    runs = runs_filtered_for_user(
        user=request.user,
        filters=RunFilters(
            account=int(filters["account"]) if filters["account"] else None,
            cluster=filters["cluster"],
            user=filters["user"],
            status=filters["status"],
        ),
    )
    context = {
        "page": CappedPaginator(runs.only(*LIST_COLUMNS), PAGE_SIZE, cap=COUNT_CAP).get_page(request.GET.get("page")),
        "filters": filters,
        "query": urlencode({k: v for k, v in filters.items() if v}),
        "filtered": any(filters.values()),
    }
    if request.htmx and not request.htmx.boosted:
        return render(request, "runs/_run_results.html", context)
    choices = run_choices_for_user(user=request.user)
    context.update(
        accounts=choices.accounts, clusters=choices.clusters, users=choices.users, statuses=RunStatus.choices
    )
    return render(request, "runs/list.html", context)


ROLE_SELECT_ID = "run-role"


def _picker_context(request: HtmxHttpRequest, params: dict[str, str]) -> dict[str, object]:
    context = action_picker_for_user(user=request.user, params=params, picker_url=reverse("runs:picker"))
    account = context["account"]
    context.update(
        role_select_id=ROLE_SELECT_ID,
        # The reason's label says "required" as soon as the chosen account asks for approvals.
        approvals_required=approvals_required(account=account, policy=Policy.COMMAND) if account else 0,
    )
    return context


def _form_context(request: HtmxHttpRequest, form: RunCommandForm, params: dict[str, str]) -> dict[str, object]:
    return {**_picker_context(request, params), "form": form}


@require_http_methods(["GET", "POST"])
def run_new(request: HtmxHttpRequest) -> HttpResponse:
    """Pick a container and type a command (GET); start the run, or its approval, and open it (POST)."""
    if not accounts_for_user(user=request.user, min_role=Role.OPERATOR).exists():
        # As the stop form: a 403 whose page says what is missing (the operator role), not a picker
        # with nothing in it; a POST gets the same, before anything reads the form.
        context = _form_context(request, RunCommandForm(), {})
        return render(request, "runs/new.html", context, status=403)
    params = (request.POST if request.method == "POST" else request.GET).dict()
    form = RunCommandForm(request.POST if request.method == "POST" else None, initial=params)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = services.run_request(
                actor=request.user,
                account_pk=data["account"],
                region=data["region"],
                cluster=data["cluster"],
                task=data["task"],
                container=data["container"],
                command=data["command"],
                mode=data["mode"],
                role_arn=data["role_arn"].strip(),
                reason=data["reason"].strip(),
                source_ip=client_ip(request),
            )
        except services.RunRefused as exc:
            form.add_error(None, str(exc))
        else:
            url = reverse("runs:detail", args=[run.pk])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    status = 422 if form.is_bound and form.errors else 200
    # htmx posts the form and swaps what comes back in its place; without JavaScript, the page.
    template = "runs/_run_form.html" if request.htmx and request.method == "POST" else "runs/new.html"
    return render(request, template, _form_context(request, form, params), status=status)


@require_POST
def shell_new(request: HtmxHttpRequest) -> HttpResponse:
    """Open a shell on the posted container (the task page's button, the run form's second
    button) and go to its terminal; a refusal goes back to the run form with the words."""
    if not accounts_for_user(user=request.user, min_role=Role.OPERATOR).exists():
        return render(request, "runs/new.html", _form_context(request, RunCommandForm(), {}), status=403)
    form = ShellOpenForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            run = interactive.shell_open(
                actor=request.user,
                account_pk=data["account"],
                region=data["region"],
                cluster=data["cluster"],
                task=data["task"],
                container=data["container"],
                role_arn=data["role_arn"].strip(),
                source_ip=client_ip(request),
            )
        except services.RunRefused as exc:
            form.add_error(None, str(exc))
        else:
            url = reverse("runs:detail", args=[run.pk])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    params = request.POST.dict()
    context = _form_context(request, RunCommandForm(initial=params), params)
    context["shell_error"] = " ".join(" ".join(errors) for errors in form.errors.values())
    template = "runs/_run_form.html" if request.htmx else "runs/new.html"
    return render(request, template, context, status=422)


@require_POST
def shell_end(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The End button of a shell (operator): the runner that owns it closes the session."""
    try:
        interactive.shell_end_by_owner(actor=request.user, run_pk=pk)
    except services.RunRefused as exc:
        messages.error(request, str(exc))
    return redirect("runs:detail", pk=pk)


@require_GET
def run_picker(request: HtmxHttpRequest) -> HttpResponse:
    """The inventory picker limited to accounts where the user may run commands, plus the role list (out of band)."""
    return render(request, "runs/_picker.html", _picker_context(request, request.GET.dict()))


def _rerun_fields(run: Run) -> list[tuple[str, str]]:
    """The run form's fields for the same command on the same container ("Run again"). None for a
    runbook's run: its shown command masks secret values, so only the runbook can run it again."""
    if run.runbook_name or run.interactive:
        return []
    fields = [
        ("account", str(run.account_id)),
        ("region", run.region),
        ("cluster", run.cluster_name),
        ("task", run.task_id),
        ("container", run.container),
        ("role_arn", run.role_arn),
        ("command", run.command),
    ]
    return fields + ([("raw", "on")] if run.mode == RunMode.RAW else [])


def _detail_context(request: HtmxHttpRequest, run: Run) -> dict[str, object]:
    role = account_role_for_user(user=request.user, account=run.account)
    can_operate = role is not None and role >= Role.OPERATOR
    rerun = _rerun_fields(run) if can_operate else []
    return {
        "run": run,
        "can_operate": can_operate,
        "rerun_fields": rerun,
        "rerun_query": urlencode(rerun),
        "fragment": bool(request.htmx),
        "waiting": run_waiting_reason(run=run) if run.status == RunStatus.QUEUED else "",
        # Waiting for approval, the run is its requester's to withdraw (services.run_cancel).
        "can_end": can_operate and run.interactive and run.is_active,
        "can_cancel": can_operate
        and not run.interactive
        and (run.is_active or (run.status == RunStatus.AWAITING_APPROVAL and run.requested_by_id == request.user.pk)),
    }


@require_GET
def run_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The run's terminal and facts; for HTMX (a status message arrived) only #run-facts."""
    run = run_get_for_user(user=request.user, run_pk=pk)
    context = _detail_context(request, run)
    if request.htmx:
        return render(request, "runs/_run_facts.html", context)
    # xterm.js writes its colours and cell sizes into <style> elements it creates. Reading the
    # nonce makes django-csp add it to this response's style-src (this page alone; scripts stay
    # 'self' only).
    socket = f"/ws/sessions/{run.pk}/" if run.interactive else f"/ws/runs/{run.pk}/"
    context.update(style_nonce=str(request.csp_nonce), socket_path=socket, scrollback=SCROLLBACK_LINES)
    return render(request, "runs/detail.html", context)


@require_POST
def run_cancel(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    run = run_get_for_user(user=request.user, run_pk=pk, min_role=Role.OPERATOR)
    try:
        services.run_cancel(actor=request.user, run_pk=run.pk, source_ip=client_ip(request))
    except services.RunRefused as exc:
        messages.error(request, str(exc))
    return redirect("runs:detail", pk=run.pk)


def _download(
    request: HtmxHttpRequest, run: Run, body: bytes | str, *, fmt: str, filename: str, ctype: str
) -> HttpResponse:
    services.run_transcript_downloaded(actor=request.user, run=run, fmt=fmt, source_ip=client_ip(request))
    response = HttpResponse(body, content_type=ctype)
    response["X-Content-Type-Options"] = "nosniff"
    disposition = "inline" if request.GET.get("inline") == "1" else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def run_transcript(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The transcript as text: escapes stripped (default) or, with ?escapes=1, exactly the bytes sent."""
    run = run_get_for_user(user=request.user, run_pk=pk, min_role=Role.OPERATOR)
    chunks = run_chunks(run=run)
    if request.GET.get("escapes") == "1":
        body: bytes | str = transcript.raw_bytes(chunks)
        fmt, filename = "text-escapes", f"run-{run.pk}-raw.txt"
    else:
        body = transcript.plain_text(chunks)
        # The run page's Find fetches it too, once output outgrew the terminal: audited as such.
        fmt = "text-find" if request.GET.get("purpose") == "find" else "text"
        filename = f"run-{run.pk}.txt"
    return _download(request, run, body, fmt=fmt, filename=filename, ctype="text/plain; charset=utf-8")


@require_GET
def run_cast(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The transcript as an asciicast v2 recording (the run page replays it)."""
    run = run_get_for_user(user=request.user, run_pk=pk, min_role=Role.OPERATOR)
    lines = transcript.asciicast_lines(
        run_chunks(run=run),
        width=run.cols,
        height=run.rows,
        timestamp=int((run.started_at or run.created_at).timestamp()),
        command=run.command,
        title=f"{'shell' if run.interactive else 'run'} #{run.pk} · {run.container} · {run.task_id}",
        events=session_events(run=run) if run.interactive else (),
    )
    return _download(
        request,
        run,
        "".join(lines),
        fmt="asciicast-replay" if request.GET.get("inline") == "1" else "asciicast",
        filename=f"run-{run.pk}.cast",
        ctype="application/x-asciicast; charset=utf-8",
    )
