"""Batches as the approval gate sees them: what will run where, starting the approved batch
once, and ending it when its request closes without running.

The request's target holds `command_sha256` and `targets_sha256`; the executor recomputes both
from the batch's rows (the real command and mode; the ordered target list) and refuses to run
when either differs from what was approved: the batch ends REFUSED and nothing starts.
"""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from ecsportal.accounts import crypto
from ecsportal.approvals.models import ApprovalRequest
from ecsportal.approvals.registry import Outcome
from ecsportal.batches import scheduler
from ecsportal.batches.models import Batch, BatchStatus, BatchTarget
from ecsportal.batches.selectors import batch_command_sha256, target_key, targets_sha256

ACTION_BATCH = "ecs.execute_batch"  # a free-form command on many: the account's command policy
ACTION_BATCH_RUNBOOK = "ecs.execute_batch_runbook"  # a runbook on many: the runbook policy
DESCRIBED_TARGETS = 100  # the approval page lists this many targets; the batch page lists all


def batch_describe(request: ApprovalRequest) -> list[str]:
    target = request.target
    lines = [
        f"Runs {target.get('command', '')!r} ({target.get('mode', 'shell')} mode) in "
        f"{target.get('targets', 0)} containers, each an ordinary run with its output recorded.",
        "An approval is for this exact command on exactly these containers; any change refuses to run.",
    ]
    rows = BatchTarget.objects.filter(batch_id=target.get("batch"), in_target_list=True).select_related("account")
    listed = list(rows.order_by("position")[: DESCRIBED_TARGETS + 1])
    for row in listed[:DESCRIBED_TARGETS]:
        lines.append(f"Target: {row.label} ({row.region}{', service ' + row.service if row.service else ''}).")
    if len(listed) > DESCRIBED_TARGETS:
        lines.append(f"… and {target.get('targets', 0) - DESCRIBED_TARGETS} more: the batch page lists every one.")
    return lines


def batch_url(request: ApprovalRequest) -> str:
    try:
        return reverse("batches:detail", args=[request.target.get("batch")])
    except NoReverseMatch:
        return ""


def batch_execute(request: ApprovalRequest) -> Outcome:
    """Called by the gate exactly once per request, outside any transaction."""
    batch = Batch.objects.filter(pk=request.target.get("batch")).first()
    if batch is None or batch.approval_id != request.pk:
        return Outcome(False, "The batch this request was for no longer exists; nothing was run.")
    if batch.status != BatchStatus.AWAITING_APPROVAL:
        return Outcome(False, f"Batch #{batch.pk} is {batch.get_status_display().lower()}; nothing was run.")
    real = crypto.decrypt(batch.command_sealed) if batch.command_sealed else batch.command
    command_ok = (
        batch_command_sha256(command=real, mode=batch.mode)
        == batch.command_sha256
        == request.target.get("command_sha256")
    )
    rows = BatchTarget.objects.filter(batch=batch, in_target_list=True).order_by("position")
    targets_ok = (
        targets_sha256([target_key(t) for t in rows]) == batch.targets_sha256 == request.target.get("targets_sha256")
    )
    if not (command_ok and targets_ok):
        what = "command" if not command_ok else "target list"
        text = f"the batch's {what} differs from what was approved; nothing was run. Ask again."
        scheduler.batch_end_unrun(batch_pk=batch.pk, status=BatchStatus.REFUSED, why=f"Not run: {text}")
        return Outcome(False, text)
    if not Batch.objects.filter(pk=batch.pk, status=BatchStatus.AWAITING_APPROVAL).update(
        status=BatchStatus.RUNNING, started_at=timezone.now()
    ):
        return Outcome(False, f"Batch #{batch.pk} changed meanwhile; nothing was run.")
    scheduler.kick(batch.pk)
    return Outcome(True, f"Batch #{batch.pk} started on {rows.count()} containers; its page shows each one.")


def batch_closed(request: ApprovalRequest) -> None:
    batch = Batch.objects.filter(approval=request).select_related("approval").first()
    if batch is not None:
        scheduler.batch_end_for_approval(batch=batch)
