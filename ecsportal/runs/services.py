"""Writes for runs that people ask for: request, cancel, and the download audit.

A run's status changes only through `lifecycle` (move, start, the one end path, publish);
these services decide whether a person may ask, audit the asking, and call it.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from ecsportal.accounts import crypto
from ecsportal.accounts.models import AwsAccount, Role
from ecsportal.accounts.selectors import account_allows_role_arn, account_get_for_user
from ecsportal.approvals.models import ApprovalRequest, Status
from ecsportal.approvals.policy import approvals_required
from ecsportal.approvals.services import approval_request
from ecsportal.audit.services import audit_record
from ecsportal.aws import ecs
from ecsportal.aws.errors import AwsError
from ecsportal.runs import dispatcher, loops
from ecsportal.runs.lifecycle import BEFORE_START, run_end
from ecsportal.runs.lifecycle import run_label as _label
from ecsportal.runs.models import ACTIVE_STATUSES, END_STATUSES, Run, RunMode, RunStatus
from ecsportal.runs.selectors import command_sha256, run_get_for_user

logger = logging.getLogger(__name__)

ACTION_COMMAND = "ecs.execute_command"  # free-form commands: the account's command policy
ACTION_RUNBOOK = "ecs.execute_runbook"  # runbooks that ask for approval: the runbook policy
MAX_COMMAND = 16_000


class RunRefused(Exception):
    """The run cannot be requested or changed; the message says why and what to do (a form error)."""


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
    """Cancel a run: before it starts, at once; while it runs, Ctrl-C then close after a grace period."""
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
        ended = before_start and run_end(
            run_pk=run.pk,
            status=RunStatus.CANCELLED,
            end_reason=f"Cancelled by {who} before it started.",
            from_statuses=BEFORE_START,
            cancel_requested_at=now,
            cancelled_by=actor,
        )
        if ended:
            if run.approval_id:
                ApprovalRequest.objects.filter(pk=run.approval_id, status=Status.PENDING).update(
                    status=Status.CANCELLED
                )
        else:  # running (or it started a moment ago): Ctrl-C, then close after the grace period
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


def run_transcript_downloaded(*, actor: AbstractBaseUser, run: Run, fmt: str, source_ip: str | None = None) -> None:
    audit_record(
        actor=actor,
        action="run.transcript_downloaded",
        target=_label(run),
        account=run.account,
        details={"run": run.pk, "format": fmt},
        source_ip=source_ip,
    )
