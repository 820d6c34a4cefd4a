"""Runs and runbooks: start, read, list, read output (long poll), cancel; list and run runbooks.

Starting goes through `runs.services.run_request` (and `runbook_run` through the runbook's own
form), so approvals, budgets and the audit trail are the pages' own; a run that needs approval
comes back `awaiting_approval` with the request's URL.
"""

from __future__ import annotations

import base64
import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from django.urls import reverse
from ninja import Field, Query, Router, Schema
from ninja.responses import Status as HttpStatus

from ecsportal.accounts.models import Role
from ecsportal.accounts.selectors import accounts_for_user
from ecsportal.api import schemas as s
from ecsportal.api.errors import Conflict
from ecsportal.api.targets import resolve_target
from ecsportal.audit.services import client_ip
from ecsportal.runbooks.forms import RunbookRunForm
from ecsportal.runbooks.selectors import runbook_get_for_user, runbooks_for_user
from ecsportal.runbooks.services import runbook_run
from ecsportal.runs.models import END_STATUSES, Run, RunStatus
from ecsportal.runs.selectors import run_chunks, run_get_for_user, runs_for_user
from ecsportal.runs.services import run_cancel, run_request

router = Router(tags=["runs"])
OUTPUT_CHUNKS = 200  # per answer; the client reads on from next_after
PAGE = 50


def run_out(request: HttpRequest, run: Run) -> dict:
    approval_url = (
        request.build_absolute_uri(reverse("approvals:detail", args=[run.approval_id])) if run.approval_id else None
    )
    return {
        "id": run.pk,
        "url": request.build_absolute_uri(reverse("runs:detail", args=[run.pk])),
        "status": run.status,
        "ended": run.status in END_STATUSES,
        "exit_code": run.exit_code,
        "end_reason": run.end_reason,
        "account": run.account.name,
        "region": run.region,
        "cluster": run.cluster,
        "task_arn": run.task_arn,
        "container": run.container,
        "command": run.command,
        "mode": run.mode,
        "runbook": run.runbook_name,
        "requested_by": run.requested_by.get_username(),
        "created_at": run.created_at,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "bytes_out": run.bytes_out,
        "approval_id": run.approval_id,
        "approval_url": approval_url,
    }


def _reload(request: HttpRequest, pk: int) -> Run:
    return run_get_for_user(user=request.user, run_pk=pk)


@router.post("/runs", response={201: s.RunOut}, summary="Start a command in a container")
def run_start(request: HttpRequest, payload: s.RunIn):
    target = resolve_target(
        user=request.user,
        account=payload.account,
        region=payload.region,
        cluster=payload.cluster,
        service=payload.service,
        task=payload.task,
        container=payload.container,
    )
    run = run_request(
        actor=request.user,
        account_pk=target.account.pk,
        region=target.region,
        cluster=target.cluster,
        task=target.task,
        container=target.container,
        command=payload.command,
        mode=payload.mode,
        reason=payload.reason,
        source_ip=client_ip(request),
    )
    return HttpStatus(201, run_out(request, _reload(request, run.pk)))


class RunListQuery(Schema):
    status: RunStatus | None = None
    account: int | None = Field(None, ge=1, le=2**53)
    mine: bool = False
    page: int = Field(1, ge=1, le=10_000)


@router.get("/runs", response=s.RunPageOut, summary="Runs on this token's accounts, newest first, paged")
def run_list(request: HttpRequest, q: Query[RunListQuery]):
    qs = runs_for_user(user=request.user).order_by("-created_at", "-id")
    if q.status:
        qs = qs.filter(status=q.status)
    if q.account:
        qs = qs.filter(account_id=q.account)
    if q.mine:
        qs = qs.filter(requested_by_id=request.user.pk)
    return paged(qs, q.page, lambda r: run_out(request, r))


def paged(qs, page: int, item) -> dict:
    """One page of PAGE rows, newest first as `qs` orders them; the count is capped (200 pages)."""
    count = qs[: PAGE * 200 + 1].count()
    rows = list(qs[(page - 1) * PAGE : page * PAGE])
    return {"count": count, "page": page, "pages": max(1, -(-count // PAGE)), "items": [item(r) for r in rows]}


@router.get("/runs/{run_id}", response=s.RunOut, summary="One run: status, exit code, why it ended")
def run_get(request: HttpRequest, run_id: int):
    return run_out(request, _reload(request, run_id))


class OutputQuery(Schema):
    after: int = Field(0, ge=0, le=2**31, description="The last seq already read (0: from the start)")
    wait: float = Field(0, ge=0, le=60, description="Seconds to wait for new output or the end (long poll)")


@router.get(
    "/runs/{run_id}/output",
    response=s.OutputOut,
    summary="Output after a sequence number; waits up to `wait` s for more (bounded by the server)",
)
def run_output(request: HttpRequest, run_id: int, q: Query[OutputQuery]):
    run = _reload(request, run_id)
    deadline = time.monotonic() + min(q.wait, settings.ECSPORTAL_API_LONG_POLL_SECONDS)
    delay = 0.01
    while True:
        ended = run.status in END_STATUSES  # read before the chunks: if ended, these are all of them
        chunks = run_chunks(run=run, after=q.after, limit=OUTPUT_CHUNKS)
        if chunks or ended or time.monotonic() >= deadline:
            break
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)  # at most 10 reads a second per waiting client
        run = _reload(request, run_id)
    out = []
    for chunk in chunks:
        data = bytes(chunk.data)
        out.append(
            {"seq": chunk.seq, "data": base64.b64encode(data).decode(), "text": data.decode("utf-8", errors="replace")}
        )
    next_after = chunks[-1].seq if chunks else q.after
    return {
        "run": run_out(request, run),
        "chunks": out,
        "next_after": next_after,
        "complete": ended and len(chunks) < OUTPUT_CHUNKS,
    }


@router.post(
    "/runs/{run_id}/cancel", response=s.RunOut, summary="Cancel: before the start at once, else Ctrl-C then close"
)
def run_cancel_view(request: HttpRequest, run_id: int):
    run = run_get_for_user(user=request.user, run_pk=run_id, min_role=Role.OPERATOR)
    if run.status in END_STATUSES:
        raise Conflict(f"Run {run.pk} has already ended ({run.get_status_display().lower()}); nothing to cancel.")
    try:
        run = run_cancel(actor=request.user, run_pk=run_id, source_ip=client_ip(request))
    except ValidationError as exc:
        raise Conflict(" ".join(exc.messages)) from None
    return run_out(request, _reload(request, run.pk))


def runbook_out(entry, visible: set[int]) -> dict:
    runbook = entry.runbook
    return {
        "id": runbook.pk,
        "name": runbook.name,
        "description": runbook.description,
        # Only accounts this token sees: a runbook shared with another account never names it.
        "accounts": [a.name for a in runbook.accounts.all() if a.pk in visible],
        "runnable_on": [a.name for a in entry.run_accounts],
        "cluster_pattern": runbook.cluster_pattern,
        "container_pattern": runbook.container_pattern,
        "needs_approval": runbook.needs_approval,
        "options": [
            {
                "name": o.name,
                "label": o.label or o.name,
                "kind": o.kind,
                "required": o.required,
                "default": "" if o.secret else o.default,
                "choices": [str(c) for c in o.choices or []],
                "secret": o.secret,
            }
            for o in runbook.options.all()
        ],
    }


@router.get("/runbooks", response=list[s.RunbookOut], tags=["runbooks"], summary="Runbooks this token can see")
def runbook_list(request: HttpRequest):
    visible = set(accounts_for_user(user=request.user).values_list("pk", flat=True))
    return [runbook_out(e, visible) for e in runbooks_for_user(user=request.user)]


def runbook_ref(request: HttpRequest, ref: str):
    if ref.isdigit():
        return runbook_get_for_user(user=request.user, runbook_pk=int(ref), min_role=Role.OPERATOR)
    entry = next((e for e in runbooks_for_user(user=request.user) if e.runbook.name == ref), None)
    if entry is None:
        raise Http404(f"No runbook named {ref} that you can see; GET /api/v1/runbooks lists them.")
    return runbook_get_for_user(user=request.user, runbook_pk=entry.runbook.pk, min_role=Role.OPERATOR)


@router.post(
    "/runbooks/{runbook}/runs",
    response={201: s.RunOut},
    tags=["runbooks"],
    summary="Run a runbook (by ID or name) with option values",
)
def runbook_start(request: HttpRequest, runbook: str, payload: s.RunbookRunIn):
    entry = runbook_ref(request, runbook)
    target = resolve_target(
        user=request.user,
        account=payload.account,
        region=payload.region,
        cluster=payload.cluster,
        service=payload.service,
        task=payload.task,
        container=payload.container,
    )
    specs = {o.name: o for o in entry.runbook.options.all()}
    unknown = sorted(set(payload.options) - set(specs))
    if unknown:
        raise ValidationError(
            f"“{entry.runbook.name}” has no option {', '.join(unknown)}; its options: {', '.join(specs) or 'none'}."
        )
    data = {
        "account": target.account.pk,
        "region": target.region,
        "cluster": target.cluster,
        "task": target.task,
        "container": target.container,
        "reason": payload.reason,
    }
    for name, option in specs.items():
        value = payload.options.get(name, option.default)
        data["opt_" + name] = ("on" if value else "") if isinstance(value, bool) else str(value)
    form = RunbookRunForm(data, runbook=entry.runbook)
    if not form.is_valid():
        errors = [
            f"{k.removeprefix('opt_')}: {' '.join(v)}" if k != "__all__" else " ".join(v)
            for k, v in form.errors.items()
        ]
        raise ValidationError(" ".join(errors))
    clean = form.cleaned_data
    run = runbook_run(
        actor=request.user,
        runbook=entry.runbook,
        account_pk=clean["account"],
        region=clean["region"],
        cluster=clean["cluster"],
        task=clean["task"],
        container=clean["container"],
        values=clean["values"],
        reason=clean["reason"],
        source_ip=client_ip(request),
    )
    return HttpStatus(201, run_out(request, _reload(request, run.pk)))
