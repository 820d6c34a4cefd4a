"""Writes for runs that people ask for: request, cancel, and the download audit.

A run's status changes only through `lifecycle` (move, start, the one end path, publish);
these services decide whether a person may ask, audit the asking, and call it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from ecsportal.accounts import crypto
from ecsportal.accounts.models import Role
from ecsportal.approvals.policy import approvals_required
from ecsportal.approvals.services import ApprovalClosed, approval_cancel, approval_request
from ecsportal.audit.services import audit_record
from ecsportal.inventory.selectors import live_task_get_for_user
from ecsportal.runs import dispatcher, loops
from ecsportal.runs.lifecycle import BEFORE_START, run_end
from ecsportal.runs.lifecycle import run_label as _label
from ecsportal.runs.models import ACTIVE_STATUSES, END_STATUSES, Run, RunMode, RunStatus
from ecsportal.runs.selectors import command_sha256, run_get_for_user
from ecsportal.runs.shellinput import MAX_COLS, MAX_ROWS

logger = logging.getLogger(__name__)

ACTION_COMMAND = "ecs.execute_command"  # free-form commands: the account's command policy
ACTION_RUNBOOK = "ecs.execute_runbook"  # runbooks that ask for approval: the runbook policy
MAX_COMMAND = 16_000


class RunRefused(ValidationError):
    """The run cannot be requested or changed; the message says why and what to do (a form error)."""

    def __str__(self) -> str:
        return " ".join(self.messages)


def run_target(
    *, actor: AbstractBaseUser, account_pk: int, region: str, cluster: str, task: str, role_arn: str
) -> tuple[Any, Any]:
    """The account and the running task a run (or a shell) would act on, checked as every action
    on a task is (`live_task_get_for_user`); RunRefused says why not (a too-low role, a disabled
    account, a role override, a task that is not running)."""
    try:
        live = live_task_get_for_user(
            user=actor, account_pk=account_pk, region=region, cluster=cluster, task=task, role_arn=role_arn
        )
    except (PermissionDenied, ValidationError) as exc:
        raise RunRefused(getattr(exc, "messages", None) or str(exc)) from None
    return live.account, live.task


def run_container_check(target: Any, container: str) -> None:
    """RunRefused unless the task has that container; the message lists the ones it has."""
    if not container:
        raise RunRefused("Pick a container.")
    if target.container(container) is None:
        names = ", ".join(c.name for c in target.containers) or "none"
        raise RunRefused(f"Task {target.id} has no container named {container} (its containers: {names}).")


def run_create(
    *,
    account: Any,
    region: str,
    cluster: str,
    target: Any,
    container: str,
    command: str,
    mode: str,
    role_arn: str,
    actor: AbstractBaseUser,
    cols: int,
    rows: int,
    shown_command: str | None = None,
    **fields: Any,
) -> Run:
    """The Run row of a request (inside the caller's transaction): its target, the command (sealed
    when what is shown differs), its digest, and a terminal size within bounds. `fields` are the
    kind's own (status, limits, a batch, a shell's terms)."""
    shown = command if shown_command is None else shown_command
    return Run.objects.create(
        account=account,
        region=region,
        cluster=cluster,
        task_arn=target.arn,
        container=container,
        command=shown,
        command_sealed=crypto.encrypt(command) if shown != command else "",
        command_sha256=command_sha256(command=command, task_arn=target.arn, container=container),
        mode=mode,
        role_arn=role_arn,
        requested_by=actor,
        cols=max(20, min(int(cols or 120), MAX_COLS)),
        rows=max(5, min(int(rows or 32), MAX_ROWS)),
        **fields,
    )


def run_where(run: Run) -> dict[str, Any]:
    """Where a run acts, as its audit events record it."""
    return {
        "run": run.pk,
        "region": run.region,
        "cluster": run.cluster,
        "task_arn": run.task_arn,
        "container": run.container,
        "role_arn": run.role_arn,
    }


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
    batch_pk: int | None = None,
    time_limit_seconds: int | None = None,
) -> Run:
    """Create a run (queued, or awaiting approval) for a running task's container.

    Raises Http404 when the account is not the user's (its existence never leaks) and
    RunRefused for everything a person can fix: role, disabled account, role override,
    region, a task that is not running, a container that is not in it, an empty command.
    The target is checked as every action on a task is, by `live_task_get_for_user`.
    `batch_pk` and `time_limit_seconds` are set by a batch starting one of its targets (its
    approval, if any, was the batch's: it passes `approval_policy=None`).
    """
    cluster, task, container = cluster.strip(), task.strip(), container.strip()
    role_arn = (role_arn or "").strip()
    account, target = run_target(
        actor=actor, account_pk=account_pk, region=region, cluster=cluster, task=task, role_arn=role_arn
    )
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
    run_container_check(target, container)

    policy = approval_policy
    needed = approvals_required(account=account, policy=policy) if policy else 0
    reason = (reason or "").strip()
    if needed and not reason:
        raise RunRefused(
            f"Commands on {account.name} need {needed} approval{'' if needed == 1 else 's'}: say why you need to run this."
        )
    digest = command_sha256(command=command, task_arn=target.arn, container=container)
    with transaction.atomic():
        run = run_create(
            account=account,
            region=region,
            cluster=cluster,
            target=target,
            container=container,
            command=command,
            shown_command=shown,
            mode=mode,
            role_arn=role_arn,
            actor=actor,
            cols=cols,
            rows=rows,
            runbook_name=runbook_name,
            reason=reason,
            status=RunStatus.AWAITING_APPROVAL if needed else RunStatus.QUEUED,
            time_limit_seconds=time_limit_seconds or settings.ECSPORTAL_RUN_TIME_LIMIT_SECONDS,
            batch_id=batch_pk,
        )
        audit_record(
            actor=actor,
            action="run.requested",
            target=_label(run),
            account=account,
            details={
                **run_where(run),
                "command": shown,
                "mode": mode,
                "runbook": runbook_name,
                "approvals_required": needed,
                **({"batch": batch_pk} if batch_pk else {}),
            },
            source_ip=source_ip,
        )
        if needed:
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
            pk = run.pk
            transaction.on_commit(lambda: dispatcher.dispatch(pk))
    return run


def run_cancel(*, actor: AbstractBaseUser, run_pk: int, source_ip: str | None = None) -> Run:
    """Cancel a run: before it starts, at once; while it runs, Ctrl-C then close after a grace period.

    Any operator of the account may cancel a queued or running run (an incident does not wait
    for its owner). A run waiting for approval is the requester's to withdraw, as any approval
    request is (`approvals.services.approval_cancel`); others are told an approver can reject it.
    """
    run = run_get_for_user(user=actor, run_pk=run_pk, min_role=Role.OPERATOR)
    if run.status in END_STATUSES:
        raise RunRefused(
            f"This run has already ended ({run.get_status_display().lower()}); there is nothing to cancel."
        )
    now = timezone.now()
    who = actor.get_username()
    before_start = run.status in BEFORE_START
    with transaction.atomic():
        # The request first, then its effect: the trail reads "run.cancel", then "run.ended".
        audit_record(
            actor=actor,
            action="run.cancel",
            target=_label(run),
            account=run.account,
            details={"run": run.pk, "before_start": before_start},
            source_ip=source_ip,
        )
        end_reason = f"Cancelled by {who} before it started."
        if run.status == RunStatus.AWAITING_APPROVAL and run.approval_id:
            # Through the gate's own cancel: its rule (the requester), its audit, the inboxes told.
            _withdraw_approval(actor=actor, run=run, source_ip=source_ip)
            end_reason = f"Cancelled by {who} before it started; approval request #{run.approval_id} withdrawn."
        ended = before_start and run_end(
            run_pk=run.pk,
            status=RunStatus.CANCELLED,
            end_reason=end_reason,
            from_statuses=BEFORE_START,
            cancel_requested_at=now,
            cancelled_by=actor,
        )
        if not ended:  # running (or it started a moment ago): Ctrl-C, then close after the grace period
            changed = Run.objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES, cancel_requested_at=None).update(
                cancel_requested_at=now, cancelled_by=actor
            )
            if not changed:
                run.refresh_from_db()
                if run.status in END_STATUSES:
                    raise RunRefused(f"This run has already ended ({run.get_status_display().lower()}).")
                raise RunRefused("Cancel was already asked for; the session closes in a few seconds.")
            pk = run.pk
            transaction.on_commit(lambda: loops.notify_cancel(pk))
    run.refresh_from_db()
    return run


def _withdraw_approval(*, actor: AbstractBaseUser, run: Run, source_ip: str | None) -> None:
    """Withdraw the run's pending approval through the gate's own cancel: one rule for who may
    (the person who asked), the `approval.cancel` audit event, and the approvers' live inboxes told."""
    try:
        approval_cancel(actor=actor, request_pk=run.approval_id, source_ip=source_ip)
    except PermissionDenied:
        raise RunRefused(
            f"Only {run.requested_by.get_username()}, who asked for this run, can withdraw it while it waits "
            "for approval; an approver can reject it instead."
        ) from None
    except ApprovalClosed as exc:
        raise RunRefused(f"{exc} Reload the page to see where the run is.") from None


def run_transcript_downloaded(*, actor: AbstractBaseUser, run: Run, fmt: str, source_ip: str | None = None) -> None:
    audit_record(
        actor=actor,
        action="run.transcript_downloaded",
        target=_label(run),
        account=run.account,
        details={"run": run.pk, "format": fmt},
        source_ip=source_ip,
    )
