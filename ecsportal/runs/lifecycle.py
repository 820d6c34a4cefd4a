"""A run's life: move, start, end, publish. The one place a run's status changes.

Every status move is a conditional UPDATE (`filter(pk=…, status__in=…).update(…)`), so the
runner, the watchdog, a cancel, an approval's end and the stale-runner sweep can race without
overwriting each other: whoever changes the row first wins, the others change nothing.

**One end path**: `run_end` is the only function that writes a run's end. It audits
`run.ended` in the same transaction and publishes the new status to the run's viewers after
the commit; every caller (the runner, a cancel before the start, an approval that closed
without running it, a queue that refused it, the sweep) goes through it.

Imports: models, audit, approvals' models (runs may read them) and `loops` (a leaf). Nothing
here imports the dispatcher, the runner or the services.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ecsportal.approvals.models import ApprovalDecision, ApprovalRequest, Decision, Status
from ecsportal.audit.services import audit_record
from ecsportal.runs import loops
from ecsportal.runs.models import ACTIVE_STATUSES, END_STATUSES, Run, RunStatus
from ecsportal.runs.selectors import run_stored_bytes

logger = logging.getLogger(__name__)

BEFORE_START = (RunStatus.AWAITING_APPROVAL, RunStatus.QUEUED)
ENDABLE = (RunStatus.AWAITING_APPROVAL, *ACTIVE_STATUSES)


def run_label(run: Run) -> str:
    return f"run #{run.pk} {run.cluster_name}/{run.task_id} {run.container}"


def status_payload(run: Run) -> dict[str, Any]:
    """The consumer's `status` message, built from the row."""
    return {
        "type": "status",
        "status": run.status,
        "label": run.get_status_display(),
        "exit_code": run.exit_code,
        "end_reason": run.end_reason,
        "bytes": run.bytes_out,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        "finished": run.status in END_STATUSES,
    }


def status_message(run_pk: int) -> dict[str, Any] | None:
    """The channel-layer message that carries a run's status as the row holds it now."""
    run = Run.objects.filter(pk=run_pk).first()
    return None if run is None else {"type": "run.status", "status": status_payload(run)}


def publish_status(run_pk: int, run: Run | None = None) -> None:
    """Tell the run's viewers its status changed (after the current transaction commits);
    `run`, the row as this transaction left it, saves reading it again."""

    def send() -> None:
        try:
            message = status_message(run_pk) if run is None else {"type": "run.status", "status": status_payload(run)}
            if message is not None:
                loops.group_send_from_sync(f"run-{run_pk}", message)
        except Exception as exc:  # stored already: viewers that miss it ask for the status themselves
            logger.warning("run %s: publishing its status failed: %s", run_pk, exc)

    transaction.on_commit(send)


def run_move(*, run_pk: int, from_statuses: tuple[str, ...], **fields: Any) -> bool:
    """One conditional status move; True when this caller changed the row."""
    return Run.objects.filter(pk=run_pk, status__in=from_statuses).update(**fields) == 1


def run_queue_approved(*, run_pk: int) -> bool:
    """AWAITING_APPROVAL → QUEUED; the stale sweep counts "no runner took it" from now."""
    with transaction.atomic():
        moved = run_move(
            run_pk=run_pk,
            from_statuses=(RunStatus.AWAITING_APPROVAL,),
            status=RunStatus.QUEUED,
            heartbeat_at=timezone.now(),
        )
        if moved:
            publish_status(run_pk)
    return moved


def run_connecting(*, run_pk: int, runner_id: str) -> bool:
    """QUEUED → CONNECTING: this runner has taken the run."""
    with transaction.atomic():
        moved = run_move(
            run_pk=run_pk,
            from_statuses=(RunStatus.QUEUED,),
            status=RunStatus.CONNECTING,
            runner_id=runner_id,
            heartbeat_at=timezone.now(),
        )
        if moved:
            publish_status(run_pk)
    return moved


def run_started(*, run_pk: int, session_id: str = "") -> bool:
    """CONNECTING → RUNNING once the data channel is open, audited in the same transaction.

    `session_id` is AWS's Session Manager session ID (never its token), so the event can be
    matched with CloudTrail's ExecuteCommand record. False when the run ended meanwhile.
    """
    now = timezone.now()
    with transaction.atomic():
        if not run_move(
            run_pk=run_pk,
            from_statuses=(RunStatus.CONNECTING,),
            status=RunStatus.RUNNING,
            started_at=now,
            heartbeat_at=now,
        ):
            return False
        run = Run.objects.select_related("account", "requested_by").get(pk=run_pk)
        audit_record(
            actor=run.requested_by,  # on whose behalf the portal opened the session
            action="run.started",
            target=run_label(run),
            account=run.account,
            details={"run": run.pk, "session_id": session_id},
        )
        publish_status(run_pk)
    return True


def run_end(
    *,
    run_pk: int,
    status: str,
    end_reason: str,
    exit_code: int | None = None,
    bytes_out: int | None = None,
    from_statuses: tuple[str, ...] = ENDABLE,
    only_runner: str | None = None,
    stale_before: datetime | None = None,
    **fields: Any,
) -> bool:
    """End a run that has not ended (conditional: an end already recorded wins), audited
    `run.ended`, then published. True when this call ended it.

    `from_statuses` narrows which states it may end from (a cancel before the start, an
    approval's end); `stale_before` is the sweep's: only if no heartbeat came in meanwhile,
    in the same UPDATE. Extra `fields` are written with the end (who cancelled, say).
    """
    assert status in END_STATUSES, status
    fields |= {
        "status": status,
        "end_reason": end_reason[:4000],
        "exit_code": exit_code,
        "ended_at": timezone.now(),
        "command_sealed": "",
    }
    if bytes_out is not None:
        fields["bytes_out"] = bytes_out
    with transaction.atomic():
        rows = Run.objects.filter(pk=run_pk, status__in=from_statuses)
        if only_runner is not None:
            rows = rows.filter(runner_id=only_runner)
        if stale_before is not None:
            rows = rows.filter(
                Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True, created_at__lt=stale_before)
            )
        if rows.update(**fields) != 1:
            return False
        run = Run.objects.select_related("account").get(pk=run_pk)
        audit_record(
            actor=None,
            action="run.ended",
            target=run_label(run),
            account=run.account,
            details={"run": run.pk, "status": status, "exit_code": exit_code, "end_reason": end_reason[:500]},
        )
        publish_status(run_pk, run)
        if run.batch_id is not None:
            batch_pk = run.batch_id
            transaction.on_commit(lambda: _after_batch_run_end(batch_pk))
    return True


# -- batches --------------------------------------------------------------------------------------

_batch_end_hooks: list[Callable[[int], object]] = []


def on_batch_run_end(hook: Callable[[int], object]) -> None:
    """Call `hook(batch_pk)` after the commit that ends a run of a batch (`ecsportal.batches`
    registers its scheduler's wake-up from its AppConfig; runs never import batches). A hook
    must be quick and must not raise; one that does is logged."""
    if hook not in _batch_end_hooks:
        _batch_end_hooks.append(hook)


def _after_batch_run_end(batch_pk: int) -> None:
    for hook in _batch_end_hooks:
        try:
            hook(batch_pk)
        except Exception:
            logger.exception("batch %s: a run-end hook failed", batch_pk)


# -- an approval that closed without running the run ----------------------------------------------


def approval_end_reason(request: ApprovalRequest | None) -> str | None:
    """Why a run waiting on `request` will never run, in words; None while it still may."""
    if request is None:
        return "Not run: its approval request was deleted."
    if request.status == Status.REJECTED:
        decision = (
            ApprovalDecision.objects.filter(request=request, decision=Decision.REJECT)
            .select_related("approver")
            .order_by("-id")
            .first()
        )
        if decision is None:
            return "Rejected."
        said = f": {decision.comment.strip()}" if decision.comment.strip() else "."
        return f"Rejected by {decision.approver.get_username()}{said}"
    if request.status == Status.CANCELLED:
        return "Not run: its approval request was withdrawn."
    if request.status == Status.EXPIRED or (request.status == Status.PENDING and request.expires_at <= timezone.now()):
        return "Not run: its approval request expired before it was approved."
    if request.status == Status.FAILED:
        return f"Not run: its approval failed: {request.result}"
    return None


def run_end_for_approval(*, request: ApprovalRequest) -> bool:
    """The approvals gate's hook for a request that closed without running its action
    (rejected, expired, withdrawn, failed): the run waiting on it ends CANCELLED at once."""
    run = Run.objects.filter(approval=request, status=RunStatus.AWAITING_APPROVAL).only("pk").first()
    why = approval_end_reason(request)
    if run is None or why is None:
        return False
    return run_end(
        run_pk=run.pk, status=RunStatus.CANCELLED, end_reason=why, from_statuses=(RunStatus.AWAITING_APPROVAL,)
    )


# -- the sweep ------------------------------------------------------------------------------------


def runs_end_stale(*, stale_after: float | None = None) -> int:
    """End active runs whose runner stopped writing its heartbeat ("runner lost"), and runs
    whose approval closed without the hook reaching them (a process that died in between).
    Nothing stays active for ever, whichever process died."""
    stale = float(stale_after if stale_after is not None else settings.ECSPORTAL_RUN_STALE_SECONDS)
    cutoff = timezone.now() - timedelta(seconds=stale)
    ended = 0
    for run in Run.objects.filter(status__in=ACTIVE_STATUSES).only("pk", "heartbeat_at", "created_at", "status"):
        beat = run.heartbeat_at or run.created_at
        if beat >= cutoff:
            continue
        if run.status == RunStatus.QUEUED:  # no runner moved it on (the queue time is its first heartbeat)
            reason = (
                f"Runner lost: no runner picked the run up within {stale:g} s "
                "(are the runs workers up, and not overloaded?)."
            )
        else:
            reason = f"Runner lost: the process running this session stopped answering for over {stale:g} s."
        if run_end(
            run_pk=run.pk,
            status=RunStatus.ERROR,
            end_reason=reason,
            bytes_out=run_stored_bytes(run_pk=run.pk),  # the heartbeat's count may be seconds old
            from_statuses=ACTIVE_STATUSES,
            stale_before=cutoff,
        ):
            ended += 1
    waiting = Run.objects.filter(status=RunStatus.AWAITING_APPROVAL).select_related("approval")
    for run in waiting:
        why = approval_end_reason(run.approval)
        if why is not None and run_end(
            run_pk=run.pk, status=RunStatus.CANCELLED, end_reason=why, from_statuses=(RunStatus.AWAITING_APPROVAL,)
        ):
            ended += 1
    return ended
