"""Writes for runs: request, cancel, settle after an approval, end, and the download audit.

Every status move is a conditional UPDATE (`filter(pk=…, status__in=…).update(…)`), so the
runner, the watchdog, a cancel and the stale-runner sweep can race without overwriting each
other: whoever changes the row first wins, the others change nothing. Each write is audited
in the same transaction; status changes are published to the run's channel-layer group after
the commit.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ecsportal.accounts import crypto
from ecsportal.accounts.models import AwsAccount, Role
from ecsportal.accounts.selectors import account_allows_role_arn, account_get_for_user
from ecsportal.audit.services import audit_record
from ecsportal.aws import ecs
from ecsportal.aws.errors import AwsError
from ecsportal.runs.models import ACTIVE_STATUSES, END_STATUSES, Run, RunMode, RunStatus
from ecsportal.runs.selectors import command_sha256, run_get_for_user, run_stored_bytes

logger = logging.getLogger(__name__)

ACTION_COMMAND = "ecs.execute_command"  # free-form commands: the account's command policy
ACTION_RUNBOOK = "ecs.execute_runbook"  # runbooks that ask for approval: the runbook policy
MAX_COMMAND = 16_000


class RunRefused(Exception):
    """The run cannot be requested or changed; the message says why and what to do (a form error)."""


def _label(run: Run) -> str:
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


def publish_status(run_pk: int) -> None:
    """Tell the run's viewers its status changed (after the current transaction commits)."""

    def send() -> None:
        from ecsportal.runs import dispatcher

        run = Run.objects.filter(pk=run_pk).first()
        if run is not None:
            dispatcher.group_send_from_sync(f"run-{run_pk}", {"type": "run.status", "status": status_payload(run)})

    transaction.on_commit(send)


def _refuse_gate(actor: AbstractBaseUser, account_pk: int) -> AwsAccount:
    try:
        return account_get_for_user(user=actor, account_pk=account_pk, min_role=Role.OPERATOR, enabled_only=True)
    except PermissionDenied as exc:  # a member with too low a role, or a disabled account
        raise RunRefused(str(exc)) from None


def run_request(
    *,
    actor: AbstractBaseUser,
    account_pk: int,
    region: str,
    cluster: str,
    task: str,
    container: str,
    command: str,
    mode: str = RunMode.SHELL,
    role_arn: str = "",
    reason: str = "",
    shown_command: str | None = None,
    approval_policy: str | None = "command",
    runbook_name: str = "",
    cols: int = 120,
    rows: int = 32,
    source_ip: str | None = None,
) -> Run:
    """Create a run (queued, or awaiting approval) for a running task's container.

    Raises Http404 when the account is not the user's (its existence never leaks) and
    RunRefused for everything a person can fix: role, disabled account, role override,
    region, a task that is not running, a container that is not in it, an empty command.
    """
    account = _refuse_gate(actor, account_pk)
    role_arn = (role_arn or "").strip()
    if not account_allows_role_arn(account=account, role_arn=role_arn):
        raise RunRefused(f"The role {role_arn} is not one the admins of {account.name} allow; pick an allowed role.")
    if region not in (account.regions or []):
        raise RunRefused(f"{region or 'No region'} is not one of {account.name}'s regions.")
    if mode not in RunMode.values:
        raise RunRefused("Pick shell or raw mode.")
    command = command or ""
    if not command.strip():
        raise RunRefused("Enter a command to run.")
    if "\0" in command:
        raise RunRefused("The command contains a NUL byte, which no container can run.")
    if len(command) > MAX_COMMAND:
        raise RunRefused(f"The command is {len(command)} characters long; the limit is {MAX_COMMAND}.")
    shown = command if shown_command is None else shown_command
    cluster, task, container = cluster.strip(), task.strip(), container.strip()
    if not (cluster and task and container):
        raise RunRefused("Pick a cluster, a task and a container.")
    try:
        found = ecs.describe_tasks(account.aws_config(), region, cluster, [task], role_arn=role_arn or None)
    except AwsError as exc:
        raise RunRefused(str(exc)) from None
    target = next((t for t in found if t.arn == task or t.id == task), None)
    if target is None:
        raise RunRefused(f"No task {task} in cluster {cluster}; it may have stopped. Pick a running task.")
    if target.last_status != "RUNNING":
        why = ": ".join(x for x in (target.stop_code, target.stopped_reason) if x)
        raise RunRefused(
            f"Task {target.id} is {target.last_status.lower() or 'not running'}"
            f"{f' ({why})' if why else ''}; commands run only in running tasks."
        )
    if target.container(container) is None:
        names = ", ".join(c.name for c in target.containers) or "none"
        raise RunRefused(f"Task {target.id} has no container named {container} (its containers: {names}).")

    from ecsportal.approvals.policy import approvals_required

    policy = approval_policy
    needed = approvals_required(account=account, policy=policy) if policy else 0
    reason = (reason or "").strip()
    if needed and not reason:
        raise RunRefused(f"Commands on {account.name} need {needed} approval(s): say why you need to run this.")
    digest = command_sha256(command=command, task_arn=target.arn, container=container)
    with transaction.atomic():
        run = Run.objects.create(
            account=account,
            region=region,
            cluster=cluster,
            task_arn=target.arn,
            container=container,
            command=shown,
            command_sealed=crypto.encrypt(command) if shown != command else "",
            command_sha256=digest,
            mode=mode,
            role_arn=role_arn,
            runbook_name=runbook_name,
            requested_by=actor,
            reason=reason,
            status=RunStatus.AWAITING_APPROVAL if needed else RunStatus.QUEUED,
            cols=max(20, min(int(cols or 120), 500)),
            rows=max(5, min(int(rows or 32), 200)),
            time_limit_seconds=settings.ECSPORTAL_RUN_TIME_LIMIT_SECONDS,
        )
        audit_record(
            actor=actor,
            action="run.requested",
            target=_label(run),
            account=account,
            details={
                "run": run.pk,
                "command": shown,
                "mode": mode,
                "region": region,
                "cluster": cluster,
                "task_arn": target.arn,
                "container": container,
                "role_arn": role_arn,
                "runbook": runbook_name,
                "approvals_required": needed,
            },
            source_ip=source_ip,
        )
        if needed:
            from ecsportal.approvals.services import approval_request

            request = approval_request(
                actor=actor,
                action=ACTION_RUNBOOK if policy == "runbook" else ACTION_COMMAND,
                account=account,
                target={
                    "run": run.pk,
                    "region": region,
                    "cluster": cluster,
                    "task_arn": target.arn,
                    "container": container,
                    "command": shown,
                    "command_sha256": digest,
                    "role_arn": role_arn,
                    "runbook": runbook_name,
                },
                target_label=f"{shown[:200]} in {cluster}/{target.id} {container} ({region})",
                reason=reason,
                source_ip=source_ip,
            )
            Run.objects.filter(pk=run.pk).update(approval=request)
            run.approval = request
        else:
            from ecsportal.runs import dispatcher

            pk = run.pk
            transaction.on_commit(lambda: dispatcher.dispatch(pk))
    return run


def run_cancel(*, actor: AbstractBaseUser, run_pk: int, source_ip: str | None = None) -> Run:
    """Cancel a run: before it starts, at once; while it runs, Ctrl-C then close after a grace period."""
    run = run_get_for_user(user=actor, run_pk=run_pk, min_role=Role.OPERATOR)
    if run.status in END_STATUSES:
        raise RunRefused(
            f"This run has already ended ({run.get_status_display().lower()}); there is nothing to cancel."
        )
    now = timezone.now()
    who = actor.get_username()
    with transaction.atomic():
        ended = (
            Run.objects.filter(pk=run.pk, status__in=(RunStatus.AWAITING_APPROVAL, RunStatus.QUEUED)).update(
                status=RunStatus.CANCELLED,
                end_reason=f"Cancelled by {who} before it started.",
                ended_at=now,
                cancel_requested_at=now,
                cancelled_by=actor,
                command_sealed="",
            )
            == 1
        )
        if ended:
            if run.approval_id:
                from ecsportal.approvals.models import ApprovalRequest, Status

                ApprovalRequest.objects.filter(pk=run.approval_id, status=Status.PENDING).update(
                    status=Status.CANCELLED
                )
        else:
            changed = Run.objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES, cancel_requested_at=None).update(
                cancel_requested_at=now, cancelled_by=actor
            )
            if not changed:
                run.refresh_from_db()
                if run.status in END_STATUSES:
                    raise RunRefused(f"This run has already ended ({run.get_status_display().lower()}).")
                raise RunRefused("Cancel was already asked for; the session closes in a few seconds.")
        audit_record(
            actor=actor,
            action="run.cancel",
            target=_label(run),
            account=run.account,
            details={"run": run.pk, "before_start": ended},
            source_ip=source_ip,
        )
        if ended:
            publish_status(run.pk)
        else:
            from ecsportal.runs import dispatcher

            pk = run.pk
            transaction.on_commit(lambda: dispatcher.notify_cancel(pk))
    run.refresh_from_db()
    return run


def run_transcript_downloaded(*, actor: AbstractBaseUser, run: Run, fmt: str, source_ip: str | None = None) -> None:
    audit_record(
        actor=actor,
        action="run.transcript_downloaded",
        target=_label(run),
        account=run.account,
        details={"run": run.pk, "format": fmt},
        source_ip=source_ip,
    )


# -- the runner's writes (sync; the runner calls them through sync_to_async) ---------------------


def run_move(*, run_pk: int, from_statuses: tuple[str, ...], **fields: Any) -> bool:
    """One conditional status move; True when this caller changed the row."""
    return Run.objects.filter(pk=run_pk, status__in=from_statuses).update(**fields) == 1


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
            target=_label(run),
            account=run.account,
            details={"run": run.pk, "session_id": session_id},
        )
    return True


def run_end(
    *,
    run_pk: int,
    status: str,
    end_reason: str,
    exit_code: int | None = None,
    bytes_out: int | None = None,
    only_runner: str | None = None,
    stale_before: datetime | None = None,
) -> bool:
    """End an active run (conditional: an end already recorded wins), audited, then published."""
    fields: dict[str, Any] = {
        "status": status,
        "end_reason": end_reason[:4000],
        "exit_code": exit_code,
        "ended_at": timezone.now(),
        "command_sealed": "",
    }
    if bytes_out is not None:
        fields["bytes_out"] = bytes_out
    with transaction.atomic():
        rows = Run.objects.filter(pk=run_pk, status__in=ACTIVE_STATUSES)
        if only_runner is not None:
            rows = rows.filter(runner_id=only_runner)
        if stale_before is not None:  # the sweep: only if no heartbeat came in meanwhile, in the same UPDATE
            rows = rows.filter(
                Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True, created_at__lt=stale_before)
            )
        if rows.update(**fields) != 1:
            return False
        run = Run.objects.select_related("account").get(pk=run_pk)
        audit_record(
            actor=None,
            action="run.ended",
            target=_label(run),
            account=run.account,
            details={"run": run.pk, "status": status, "exit_code": exit_code, "end_reason": end_reason[:500]},
        )
        publish_status(run_pk)
    return True


def run_settle_approval(*, run: Run) -> Run:
    """A run whose approval was rejected, expired, cancelled or failed ends CANCELLED, saying so.

    Called when the run is read (page, socket) and by the sweep, so no run waits forever.
    """
    if run.status != RunStatus.AWAITING_APPROVAL or run.approval_id is None:
        return run
    from ecsportal.approvals.models import ApprovalRequest, Status

    request = ApprovalRequest.objects.filter(pk=run.approval_id).first()
    if request is None:
        why = "its approval request was deleted"
    elif request.status == Status.PENDING and request.expires_at <= timezone.now():
        why = "its approval request expired before it was approved"
    elif request.status in (Status.REJECTED, Status.CANCELLED, Status.EXPIRED):
        why = f"its approval request was {request.get_status_display().lower()}"
    elif request.status == Status.FAILED:
        why = f"its approval failed: {request.result}"
    else:
        return run
    with transaction.atomic():
        changed = Run.objects.filter(pk=run.pk, status=RunStatus.AWAITING_APPROVAL).update(
            status=RunStatus.CANCELLED,
            end_reason=f"Not run: {why}.",
            ended_at=timezone.now(),
            command_sealed="",
        )
        if changed:
            audit_record(
                actor=None,
                action="run.ended",
                target=_label(run),
                account=run.account,
                details={"run": run.pk, "status": RunStatus.CANCELLED, "end_reason": why},
            )
            publish_status(run.pk)
    run.refresh_from_db()
    return run


def runs_end_stale(*, stale_after: float | None = None) -> int:
    """End active runs whose runner stopped writing its heartbeat ("runner lost"), and settle
    runs whose approval ended. Nothing stays active for ever, whichever process died."""
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
        # The last heartbeat's byte count is up to a heartbeat old: count what was stored.
        stored = run_stored_bytes(run_pk=run.pk)
        if run_end(run_pk=run.pk, status=RunStatus.ERROR, end_reason=reason, stale_before=cutoff, bytes_out=stored):
            ended += 1
    for run in Run.objects.filter(status=RunStatus.AWAITING_APPROVAL).select_related("account"):
        run_settle_approval(run=run)
    return ended
