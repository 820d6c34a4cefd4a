"""Batches: preview a filter, start a command or runbook on every matching container, read the
summary (the batch page's JSON), cancel.

Everything goes through `batches.services` and `batches.selectors`, the pages' own: the same
preview, the one approval that binds command and target list, the same gate. A client that
previewed passes `expect_targets_sha256` so that what runs is what it saw.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.urls import reverse
from ninja import Field, Query, Router, Schema
from ninja.responses import Status as HttpStatus

from ecsportal.accounts.models import Role
from ecsportal.api import schemas as s
from ecsportal.api.errors import Conflict
from ecsportal.api.runs import paged, runbook_ref
from ecsportal.api.targets import account_for_ref
from ecsportal.audit.services import client_ip
from ecsportal.batches.models import BATCH_END_STATUSES, Batch
from ecsportal.batches.selectors import batch_get_for_user, batch_summary, batches_for_user
from ecsportal.batches.services import (
    BatchOptions,
    BatchPreview,
    BatchSpec,
    batch_cancel,
    batch_preview,
    batch_start,
)

router = Router(tags=["batches"])


def _spec(request: HttpRequest, payload: s.BatchFilterIn) -> BatchSpec:
    accounts = tuple(account_for_ref(user=request.user, ref=ref, min_role=Role.OPERATOR).pk for ref in payload.accounts)
    return BatchSpec(
        accounts=accounts,
        region=payload.region or "",
        cluster=payload.cluster or "",
        service=payload.service or "",
        family=payload.family or "",
        revision=payload.revision,
        container=payload.container or "",
        launch_type=payload.launch_type or "",
        expect_targets_sha256=payload.expect_targets_sha256 or "",
    )


def _preview_out(preview: BatchPreview) -> dict:
    def row(t) -> dict:
        return {
            "account": t.account.name,
            "region": t.region,
            "cluster": t.cluster,
            "service": t.service,
            "task": t.task.id,
            "task_arn": t.task.arn,
            "container": t.container,
            "ready": t.ready,
            "skip_reason": t.reason or None,
        }

    return {
        "targets_sha256": preview.targets_sha256,
        "problem": preview.problem or None,
        "targets": [row(t) for t in preview.targets],
        "skipped": [row(t) for t in preview.skipped],
        "errors": list(preview.errors),
    }


def batch_out(request: HttpRequest, batch: Batch) -> dict:
    summary = batch_summary(batch)
    summary["id"] = summary.pop("batch")
    summary["url"] = request.build_absolute_uri(reverse("batches:detail", args=[batch.pk]))
    summary["ended"] = batch.status in BATCH_END_STATUSES
    summary["approval_id"] = batch.approval_id
    summary["approval_url"] = (
        request.build_absolute_uri(reverse("approvals:detail", args=[batch.approval_id])) if batch.approval_id else None
    )
    return summary


@router.post("/batches/preview", response=s.BatchPreviewOut, summary="What a filter matches, before anything runs")
def batch_preview_view(request: HttpRequest, payload: s.BatchFilterIn):
    return _preview_out(batch_preview(user=request.user, spec=_spec(request, payload)))


@router.post("/batches", response={201: s.BatchOut}, summary="Start a command or runbook on every matching container")
def batch_start_view(request: HttpRequest, payload: s.BatchStartIn):
    if bool(payload.command) == bool(payload.runbook):
        raise ValidationError("Give either a command or a runbook (by ID or name), not both.")
    runbook = runbook_ref(request, payload.runbook).runbook if payload.runbook else None
    batch = batch_start(
        user=request.user,
        spec=_spec(request, payload),
        command=payload.command,
        runbook=runbook,
        values=dict(payload.options),
        options=BatchOptions(
            concurrency=payload.concurrency,
            time_limit_seconds=payload.time_limit_seconds,
            stop_after_failures=payload.stop_after_failures,
            raw=payload.mode == "raw",
        ),
        reason=payload.reason,
        source_ip=client_ip(request),
    )
    return HttpStatus(201, batch_out(request, batch))


class BatchListQuery(Schema):
    mine: bool = False
    page: int = Field(1, ge=1, le=10_000)


@router.get("/batches", response=s.BatchPageOut, summary="Batches on this token's accounts, newest first, paged")
def batch_list(request: HttpRequest, q: Query[BatchListQuery]):
    qs = batches_for_user(user=request.user).select_related("requested_by").order_by("-created_at", "-id")
    if q.mine:
        qs = qs.filter(requested_by_id=request.user.pk)
    return paged(qs, q.page, lambda b: batch_brief(request, b))


def batch_brief(request: HttpRequest, b: Batch) -> dict:
    return {
        "id": b.pk,
        "url": request.build_absolute_uri(reverse("batches:detail", args=[b.pk])),
        "status": b.status,
        "command": b.command,
        "runbook": b.runbook_name or None,
        "requested_by": b.requested_by.get_username(),
        "created_at": b.created_at,
        "ended_at": b.ended_at,
    }


@router.get("/batches/{batch_id}", response=s.BatchOut, summary="One batch: every target, counts, output groups")
def batch_get(request: HttpRequest, batch_id: int):
    return batch_out(request, batch_get_for_user(user=request.user, pk=batch_id))


@router.post(
    "/batches/{batch_id}/cancel", response=s.BatchOut, summary="Cancel: no new target starts, running ones stop"
)
def batch_cancel_view(request: HttpRequest, batch_id: int):
    batch = batch_get_for_user(user=request.user, pk=batch_id, min_role=Role.OPERATOR)
    if batch.status in BATCH_END_STATUSES:
        raise Conflict(f"Batch {batch.pk} has already ended ({batch.get_status_display().lower()}); nothing to cancel.")
    batch = batch_cancel(user=request.user, batch=batch, source_ip=client_ip(request))
    return batch_out(request, batch_get_for_user(user=request.user, pk=batch.pk))
