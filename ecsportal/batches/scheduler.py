"""The batch scheduler: start targets up to the batch's concurrency, never more, and go on
when one ends. Its state is the database's (`BatchTarget.state`, the runs' statuses), so any
process may advance any batch and a restart loses nothing.

`batch_advance(pk)` is one pass, safe to call any number of times from anywhere:

1. Hash the stored output of target runs that ended (for "group by output").
2. **Claim**, in one short transaction that first UPDATEs the batch row (the row's lock on
   PostgreSQL, the database's write lock on SQLite, so two passes never interleave): count
   the active targets (STARTING, or STARTED with a run not ended), stop starting when the
   batch was cancelled or reached its failure limit (the pending ones are skipped, saying
   why), claim up to `concurrency − active` pending targets (→ STARTING), or end the batch
   when nothing is pending or active.
3. **Start** each claimed target (up to 8 side by side): `runs.services.run_request` (the
   running-task check, then the run row and its audit in one transaction; dispatched after
   the commit), then the target → STARTED with its run; until then the target is STARTING,
   so it counts once. A target the run service refuses (its task stopped, a role revoked) is
   skipped with the refusal's words. The pass then claims again (a run may have ended
   meanwhile), until nothing can start.

A claim that its process did not finish (it died in 3) is given back to PENDING by the sweep
after `CLAIM_STALE_SECONDS`, unless its run exists (then it is linked to it).

Who calls it: `kick(pk)` hands the pass to this process's scheduler thread (never blocking the
caller); the runs lifecycle calls `kick` after the commit of every batch run's end
(`lifecycle.on_batch_run_end`, registered in `apps.py`), `batch_start` after its commit, the
approval executor once approved; the sweep (`start_batch_sweep`, under the lease
"batches-sweep") every `ECSPORTAL_BATCH_SWEEP_SECONDS` advances every running batch, which is
how a batch whose process died resumes.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from asgiref.sync import SyncToAsync
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import close_old_connections, connections, transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from ecsportal.accounts import crypto
from ecsportal.accounts.models import AwsAccount
from ecsportal.audit.services import audit_record
from ecsportal.batches.models import FAILED_STATUSES, Batch, BatchStatus, BatchTarget, TargetState
from ecsportal.periodic import start_periodic
from ecsportal.runs.lifecycle import approval_end_reason
from ecsportal.runs.models import ACTIVE_STATUSES, END_STATUSES, Run, RunChunk, RunStatus
from ecsportal.runs.services import run_request

logger = logging.getLogger(__name__)

CLAIM_STALE_SECONDS = 120.0
RUN_NOT_ENDED = (RunStatus.AWAITING_APPROVAL, *ACTIVE_STATUSES)


def output_sha256(run_pk: int) -> str:
    """The sha256 of a run's stored transcript, read chunk by chunk."""
    digest = hashlib.sha256()
    chunks = RunChunk.objects.filter(run_id=run_pk).order_by("seq").values_list("data", flat=True)
    for data in chunks.iterator(chunk_size=200):
        digest.update(bytes(data))
    return digest.hexdigest()


def _hash_ended_outputs(batch_pk: int) -> None:
    ended = BatchTarget.objects.filter(
        batch_id=batch_pk, state=TargetState.STARTED, output_sha256="", run__status__in=END_STATUSES
    ).values_list("pk", "run_id")
    for target_pk, run_pk in list(ended):
        BatchTarget.objects.filter(pk=target_pk).update(output_sha256=output_sha256(run_pk))


def _active(batch: Batch) -> int:
    return batch.targets.filter(
        Q(state=TargetState.STARTING) | Q(state=TargetState.STARTED, run__status__in=RUN_NOT_ENDED)
    ).count()


def _claim(batch_pk: int) -> list[BatchTarget]:
    """Step 2 of the module's docstring; the targets this pass must start."""
    now = timezone.now()
    with transaction.atomic():
        if not Batch.objects.filter(pk=batch_pk, status=BatchStatus.RUNNING).update(advanced_at=now):
            return []  # not running (awaiting approval, or ended): nothing to start
        batch = Batch.objects.select_for_update().get(pk=batch_pk)
        failures = batch.targets.filter(run__status__in=FAILED_STATUSES).count()
        stop = ""
        if batch.cancel_requested_at is not None:
            who = batch.cancelled_by.get_username() if batch.cancelled_by else "someone"
            stop = f"Not started: the batch was cancelled by {who}."
        elif batch.stop_after_failures and failures >= batch.stop_after_failures:
            stop = (
                f"Not started: the batch stopped starting new targets after {failures} "
                f"failure{'' if failures == 1 else 's'} (the limit was {batch.stop_after_failures})."
            )
        if stop:
            batch.targets.filter(state=TargetState.PENDING).update(state=TargetState.SKIPPED, skip_reason=stop)
        active = _active(batch)
        pending = batch.targets.filter(state=TargetState.PENDING)
        if active == 0 and not pending.exists():
            _finish(batch, failures=failures, stopped=stop)
            return []
        free = batch.concurrency - active
        if free <= 0 or stop:
            return []
        claimed = list(pending.select_related("account").order_by("position")[:free])
        BatchTarget.objects.filter(pk__in=[t.pk for t in claimed], state=TargetState.PENDING).update(
            state=TargetState.STARTING, claimed_at=now
        )
        return claimed


def _finish(batch: Batch, *, failures: int, stopped: str) -> None:
    cancelled = batch.cancel_requested_at is not None
    counts = {
        "ran": batch.targets.filter(state=TargetState.STARTED).count(),
        "failed": failures,
        "not_started": batch.targets.filter(state=TargetState.SKIPPED, in_target_list=True).count(),
    }
    why = f"{counts['ran']} ran, {failures} failed, {counts['not_started']} not started."
    if cancelled:
        why = f"Cancelled by {batch.cancelled_by.get_username() if batch.cancelled_by else 'someone'}: {why}"
    elif stopped:
        why = f"Stopped starting new targets after {failures} failure{'' if failures == 1 else 's'}: {why}"
    status = BatchStatus.CANCELLED if cancelled else BatchStatus.FINISHED
    if Batch.objects.filter(pk=batch.pk, status=BatchStatus.RUNNING).update(
        status=status, end_reason=why, ended_at=timezone.now(), command_sealed=""
    ):
        for account in AwsAccount.objects.filter(pk__in=batch.targets.values("account")).distinct():
            audit_record(
                actor=None,
                action="batch.ended",
                target=f"batch #{batch.pk}",
                account=account,
                details={"batch": batch.pk, "status": status, **counts},
            )


def _start(batch: Batch, target: BatchTarget) -> bool:
    """Step 3: the target's run, then its STARTED state; False if the run service refused it.

    Not one transaction: the running-task check (DescribeTasks) must not hold the database's
    write lock (SQLite) while it waits on AWS. Between the two writes the target is still
    STARTING, so it counts once; a process that dies there leaves a run the sweep links."""
    command = crypto.decrypt(batch.command_sealed) if batch.command_sealed else batch.command
    try:
        run = run_request(
            actor=batch.requested_by,
            account_pk=target.account_id,
            region=target.region,
            cluster=target.cluster,
            task=target.task_arn,
            container=target.container,
            command=command,
            shown_command=batch.command,
            mode=batch.mode,
            approval_policy=None,  # the batch's approval covered it
            runbook_name=batch.runbook_name,
            batch_pk=batch.pk,
            time_limit_seconds=batch.time_limit_seconds,
        )
    except (ValidationError, PermissionDenied, Http404) as exc:
        text = " ".join(getattr(exc, "messages", None) or [str(exc) or "the account is not the requester's"])
        BatchTarget.objects.filter(pk=target.pk, state=TargetState.STARTING).update(
            state=TargetState.SKIPPED, skip_reason=f"Not started: {text}"
        )
        return False
    BatchTarget.objects.filter(pk=target.pk).update(state=TargetState.STARTED, run=run)
    return True


START_THREADS = 8  # claimed targets started side by side (each waits on DescribeTasks)


def _start_on_own_connection(batch: Batch, target: BatchTarget) -> bool:
    try:
        return _start(batch, target)
    finally:
        connections.close_all()  # this pool's thread ends with the pass


def _start_all(batch: Batch, claimed: list[BatchTarget]) -> list[bool]:
    """Start the claimed targets, up to START_THREADS at once: each start waits on AWS (the
    running-task check), and a pass that starts 20 targets one by one would leave the first
    slots idle. On the tests' in-memory SQLite, one by one on Django's one thread."""
    if len(claimed) == 1 or _shares_one_thread():
        return [_start(batch, target) for target in claimed]
    with ThreadPoolExecutor(max_workers=min(START_THREADS, len(claimed)), thread_name_prefix="batches-start") as pool:
        return list(pool.map(lambda t: _start_on_own_connection(batch, t), claimed))


def batch_advance(batch_pk: int) -> int:
    """One pass (see the module's docstring); returns how many targets it started."""
    started = 0
    # Claim again after starting: a run that ended while its target was still STARTING was
    # not seen by the pass its end woke; this one sees it. Each round claims ≥ 1 target or
    # stops; the bound is only a guard.
    for _ in range(10_000):
        _hash_ended_outputs(batch_pk)
        claimed = _claim(batch_pk)
        if not claimed:
            break
        batch = Batch.objects.select_related("requested_by").get(pk=batch_pk)
        started += sum(_start_all(batch, claimed))
    return started


def batch_end_unrun(*, batch_pk: int, status: str, why: str, from_status: str = BatchStatus.AWAITING_APPROVAL) -> bool:
    """End a batch none of whose targets will run (its approval closed, or the approved
    command or targets differ): every pending target skipped with the same words, audited."""
    with transaction.atomic():
        if not Batch.objects.filter(pk=batch_pk, status=from_status).update(
            status=status, end_reason=why, ended_at=timezone.now(), command_sealed=""
        ):
            return False
        BatchTarget.objects.filter(batch_id=batch_pk, state=TargetState.PENDING).update(
            state=TargetState.SKIPPED, skip_reason=why
        )
        for account in AwsAccount.objects.filter(
            pk__in=BatchTarget.objects.filter(batch_id=batch_pk).values("account")
        ).distinct():
            audit_record(
                actor=None,
                action="batch.ended",
                target=f"batch #{batch_pk}",
                account=account,
                details={"batch": batch_pk, "status": status, "end_reason": why[:500]},
            )
    return True


def batch_end_for_approval(*, batch: Batch) -> bool:
    """The batch waiting on a request that closed without running it ends CANCELLED, saying why."""
    why = approval_end_reason(batch.approval)
    if batch.status != BatchStatus.AWAITING_APPROVAL or why is None:
        return False
    return batch_end_unrun(batch_pk=batch.pk, status=BatchStatus.CANCELLED, why=why)


# -- this process's scheduler thread --------------------------------------------------------------

_wanted: set[int] = set()
_cond = threading.Condition()
_thread: threading.Thread | None = None


def kick(batch_pk: int) -> None:
    """Advance the batch soon, on this process's scheduler thread (never blocks the caller)."""
    global _thread
    with _cond:
        _wanted.add(int(batch_pk))
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_work, name="batches-scheduler", daemon=True)
            _thread.start()
        _cond.notify()


def _shares_one_thread() -> bool:
    """An in-memory SQLite database (the tests') fails at once on a second writer ("table is
    locked"): there the pass goes through Django's shared database thread, as every call does."""
    connection = connections["default"]
    return connection.vendor == "sqlite" and connection.is_in_memory_db()


def _work() -> None:
    while True:
        with _cond:
            while not _wanted:
                _cond.wait()
            batch_pk = _wanted.pop()
        try:
            if _shares_one_thread():
                SyncToAsync.single_thread_executor.submit(batch_advance, batch_pk).result()
            else:
                batch_advance(batch_pk)
        except Exception:  # the sweep tries again; a pass changes nothing half-way
            logger.exception("batch %s: the scheduler's pass failed", batch_pk)
        finally:
            with _cond:
                idle = not _wanted
            if idle:  # nothing queued: hold no connection while waiting
                connections.close_all()
            else:
                close_old_connections()


# -- the sweep ------------------------------------------------------------------------------------


def batches_sweep() -> int:
    """Resume every running batch (a scheduler that died with its process), give back claims
    that were never started, and end batches whose approval closed without the hook reaching
    them. Returns how many targets it started."""
    cutoff = timezone.now() - timedelta(seconds=CLAIM_STALE_SECONDS)
    for target in BatchTarget.objects.filter(state=TargetState.STARTING, claimed_at__lt=cutoff):
        run = Run.objects.filter(
            batch_id=target.batch_id, task_arn=target.task_arn, container=target.container, batch_target=None
        ).first()
        if run is not None:
            BatchTarget.objects.filter(pk=target.pk, state=TargetState.STARTING).update(
                state=TargetState.STARTED, run=run
            )
        else:
            BatchTarget.objects.filter(pk=target.pk, state=TargetState.STARTING).update(
                state=TargetState.PENDING, claimed_at=None
            )
    for batch in Batch.objects.filter(status=BatchStatus.AWAITING_APPROVAL).select_related("approval"):
        batch_end_for_approval(batch=batch)
    started = 0
    for pk in list(Batch.objects.filter(status=BatchStatus.RUNNING).values_list("pk", flat=True)):
        started += batch_advance(pk)
    return started


def start_batch_sweep() -> threading.Thread | None:
    interval = float(getattr(settings, "ECSPORTAL_BATCH_SWEEP_SECONDS", 0))
    return start_periodic(name="batches-sweep", interval=interval, job=batches_sweep, first_delay=3.0, lease=True)
