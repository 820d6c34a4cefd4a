"""Batches: preview what a filter matches, start a batch (or its approval), cancel it, re-run
the failed targets. Callable from any caller (the pages, the API): typed, keyword-only, every
refusal a `ValidationError` whose message says what to do.

The preview reads the live inventory (`inventory.selectors`, briefly cached) and checks each
matched container's exec readiness (`records.Task.exec_readiness`, the same words as the task
page). `batch_start` previews again and, when the caller says which target list it saw
(`BatchSpec.expect_targets_sha256`), refuses a list that changed since: what runs is what was
previewed. Each target becomes an ordinary run through `runs.services.run_request` when the
scheduler starts it (`scheduler.py`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from ecsportal.accounts import crypto
from ecsportal.accounts.models import AwsAccount, Role
from ecsportal.accounts.selectors import account_role_for_user, accounts_for_user
from ecsportal.approvals.policy import approvals_required
from ecsportal.approvals.services import ApprovalClosed, approval_cancel, approval_request
from ecsportal.audit.services import audit_record
from ecsportal.aws import ecs, records
from ecsportal.batches import scheduler
from ecsportal.batches.executor import ACTION_BATCH, ACTION_BATCH_RUNBOOK
from ecsportal.batches.models import (
    BATCH_END_STATUSES,
    FAILED_STATUSES,
    Batch,
    BatchStatus,
    BatchTarget,
    TargetState,
)
from ecsportal.batches.selectors import batch_command_sha256, key_of, target_key, targets_sha256
from ecsportal.inventory.selectors import clusters_in_region, tasks_in_cluster
from ecsportal.runbooks.models import Runbook
from ecsportal.runbooks.rendering import TemplateError, ValueRefused, clean_value, render_command
from ecsportal.runbooks.selectors import target_allowed
from ecsportal.runs.models import ACTIVE_STATUSES, RunMode
from ecsportal.runs.services import MAX_COMMAND, RunRefused, run_cancel

logger = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 5
LAUNCH_TYPES = ("FARGATE", "EC2", "EXTERNAL")


class BatchRefused(ValidationError):
    """The batch cannot be previewed, started or changed; the message says why and what to do."""

    def __str__(self) -> str:
        return " ".join(self.messages)


@dataclass(frozen=True)
class BatchSpec:
    """Which containers: every field narrows the match; empty means any.

    `container` empty means each task's only container (a task with several is skipped, asking
    for a name). `expect_targets_sha256`: the preview's `targets_sha256` the caller saw; given,
    `batch_start` refuses a target list that differs from it.
    """

    accounts: tuple[int, ...]
    region: str = ""
    cluster: str = ""
    service: str = ""
    family: str = ""
    revision: int | None = None
    container: str = ""
    launch_type: str = ""
    expect_targets_sha256: str = ""

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("expect_targets_sha256")
        data["accounts"] = list(self.accounts)
        return data


@dataclass(frozen=True)
class BatchOptions:
    concurrency: int = DEFAULT_CONCURRENCY  # 1 … ECSPORTAL_BATCH_MAX_CONCURRENCY (50)
    time_limit_seconds: int | None = None  # per target; None: ECSPORTAL_RUN_TIME_LIMIT_SECONDS
    stop_after_failures: int = 0  # stop starting new targets after this many failed; 0 never
    raw: bool = False  # raw mode: no shell, no exit code


@dataclass(frozen=True)
class PreviewTarget:
    account: AwsAccount
    region: str
    cluster: str
    service: str
    task: records.Task
    container: str
    ready: bool
    reason: str  # why it is skipped ("" when ready)

    @property
    def key(self) -> str:
        return key_of(
            account_pk=self.account.pk,
            region=self.region,
            cluster=self.cluster,
            task_arn=self.task.arn,
            container=self.container,
        )

    @property
    def label(self) -> str:
        return f"{self.account.name}/{self.cluster}/{self.task.id}/{self.container}"


@dataclass(frozen=True)
class BatchPreview:
    targets: list[PreviewTarget]  # ready: these run, in this order
    skipped: list[PreviewTarget]  # matched, not exec-ready (or not allowed by the runbook), with why
    errors: list[str] = field(default_factory=list)  # clusters or regions that could not be read
    limit: int = 0
    over_limit: bool = False

    @property
    def targets_sha256(self) -> str:
        return targets_sha256([t.key for t in self.targets])

    @property
    def problem(self) -> str:
        """Why this preview cannot start as it is ("" when it can)."""
        if self.errors:
            return (
                f"Could not read {len(self.errors)} part(s) of the estate ({'; '.join(self.errors[:3])}): "
                "narrow the filter to leave them out, or try again."
            )
        if self.over_limit:
            return (
                f"The filter matches {len(self.targets)} ready containers; a batch may have at most "
                f"{self.limit} (ECSPORTAL_BATCH_MAX_TARGETS). Narrow the filter."
            )
        if not self.targets:
            return "No exec-ready container matches this filter" + (
                f" ({len(self.skipped)} matched but cannot be reached: see why below)." if self.skipped else "."
            )
        return ""


# -- preview --------------------------------------------------------------------------------------


def _clean_spec(spec: BatchSpec) -> BatchSpec:
    launch = (spec.launch_type or "").strip().upper()
    if launch and launch not in LAUNCH_TYPES:
        raise BatchRefused(f"Launch type {spec.launch_type} is not one of {', '.join(LAUNCH_TYPES)}.")
    if spec.revision is not None and (not spec.family.strip() or spec.revision < 1):
        raise BatchRefused("A task definition revision needs its family, and is 1 or more.")
    if not spec.accounts:
        raise BatchRefused("Pick at least one account.")
    return BatchSpec(
        accounts=tuple(dict.fromkeys(int(a) for a in spec.accounts)),
        region=spec.region.strip(),
        cluster=spec.cluster.strip(),
        service=spec.service.strip(),
        family=spec.family.strip(),
        revision=spec.revision,
        container=spec.container.strip(),
        launch_type=launch,
        expect_targets_sha256=spec.expect_targets_sha256.strip(),
    )


def _operator_accounts(*, user: AbstractBaseUser, spec: BatchSpec) -> list[AwsAccount]:
    """The spec's accounts through the one gate: a member below operator is told; an account
    that is not the user's, or does not exist, is the same "no such account" (nothing leaks)."""
    mine = {a.pk: a for a in accounts_for_user(user=user)}
    chosen = []
    for pk in spec.accounts:
        account = mine.get(pk)
        if account is None:
            raise BatchRefused(f"No such account ({pk}).")
        role = account_role_for_user(user=user, account=account)
        if role is None or role < Role.OPERATOR:
            raise PermissionDenied(f"Running commands on {account.name} needs the operator role.")
        if not account.is_enabled:
            raise BatchRefused(f"{account.name} is disabled; an admin can enable it again.")
        chosen.append(account)
    return chosen


def _task_matches(task: records.Task, spec: BatchSpec) -> bool:
    if spec.service and task.service_name != spec.service:
        return False
    family, _, revision = task.task_definition.rpartition(":")
    if spec.family and family != spec.family:
        return False
    if spec.revision is not None and revision != str(spec.revision):
        return False
    return not (spec.launch_type and task.launch_type.upper() != spec.launch_type)


def batch_preview(*, user: AbstractBaseUser, spec: BatchSpec, runbook: Runbook | None = None) -> BatchPreview:
    """Every running container the filter matches on the user's operator accounts: those ECS
    Exec can reach (in a stable order), and those skipped with why. Reads only."""
    spec = _clean_spec(spec)
    accounts = _operator_accounts(user=user, spec=spec)
    errors: list[str] = []
    pairs = []
    for account in accounts:
        if spec.region and spec.region not in (account.regions or []):
            errors.append(f"{spec.region} is not one of {account.name}'s regions ({', '.join(account.regions or [])})")
            continue
        pairs.extend((account, region) for region in ([spec.region] if spec.region else account.regions or []))
    triples = []
    for outcome in ecs.fan_out(lambda p: clusters_in_region(account=p[0], region=p[1]), pairs):
        account, region = outcome.item
        if outcome.error is not None:
            errors.append(f"{account.name} {region}: {outcome.error}")
            continue
        # A named cluster: the regions that have it (a region without it is no error).
        names = [c.name for c in outcome.result or [] if not spec.cluster or c.name == spec.cluster]
        triples.extend((account, region, name) for name in names)
    if spec.cluster and not triples and not errors:
        where = spec.region or "any of their regions"
        raise BatchRefused(f"No cluster named {spec.cluster} in {where} on the accounts picked.")
    targets: list[PreviewTarget] = []
    skipped: list[PreviewTarget] = []
    for outcome in ecs.fan_out(lambda t: tasks_in_cluster(account=t[0], region=t[1], cluster=t[2]), triples):
        account, region, cluster = outcome.item
        if outcome.error is not None:
            errors.append(f"{account.name} {region} {cluster}: {outcome.error}")
            continue
        for task in sorted(outcome.result or [], key=lambda t: t.arn):
            if not _task_matches(task, spec):
                continue
            for name, why in _containers(task, spec.container):
                if not why:
                    why = "" if task.exec_readiness(name).ready else task.exec_readiness(name).reason
                if not why and runbook is not None:
                    why = target_allowed(runbook=runbook, cluster=cluster, container=name)
                    if not why and not runbook.accounts.filter(pk=account.pk).exists():
                        why = f"“{runbook.name}” is not offered on {account.name}."
                item = PreviewTarget(
                    account=account,
                    region=region,
                    cluster=cluster,
                    service=task.service_name,
                    task=task,
                    container=name,
                    ready=not why,
                    reason=why,
                )
                (skipped if why else targets).append(item)
    limit = int(settings.ECSPORTAL_BATCH_MAX_TARGETS)
    return BatchPreview(targets=targets, skipped=skipped, errors=errors, limit=limit, over_limit=len(targets) > limit)


def _containers(task: records.Task, name: str) -> list[tuple[str, str]]:
    """(container, why it is skipped or "") for the task: the named one, or its only one."""
    if name:
        if task.container(name) is None:
            return []  # the filter names a container this task does not have: not a match
        return [(name, "")]
    if len(task.containers) == 1:
        return [(task.containers[0].name, "")]
    names = ", ".join(c.name for c in task.containers) or "none"
    return [(names, f"The task has {len(task.containers)} containers ({names}); name the container to run in.")]


# -- start ----------------------------------------------------------------------------------------


def _command_for(
    *, command: str | None, runbook: Runbook | None, values: dict | None, raw: bool
) -> tuple[str, str, str]:
    """(real command, shown command, mode)."""
    if runbook is not None:
        cleaned = {}
        for option in runbook.option_specs():
            try:
                cleaned[option.name] = clean_value(option, (values or {}).get(option.name))
            except ValueRefused as exc:
                raise BatchRefused(f"{option.name}: {exc}") from None
        try:
            real, shown = render_command(runbook.command_template, runbook.option_specs(), cleaned)
        except TemplateError as exc:
            raise BatchRefused(f"The runbook's template is broken: {exc}") from None
        return real, shown, runbook.mode
    command = command or ""
    if not command.strip():
        raise BatchRefused("Enter a command to run.")
    if "\0" in command:
        raise BatchRefused("The command contains a NUL byte, which no container can run.")
    if len(command) > MAX_COMMAND:
        raise BatchRefused(f"The command is {len(command)} characters long; the limit is {MAX_COMMAND}.")
    return command, command, RunMode.RAW if raw else RunMode.SHELL


def _clean_options(options: BatchOptions) -> BatchOptions:
    most = int(settings.ECSPORTAL_BATCH_MAX_CONCURRENCY)
    if not 1 <= int(options.concurrency) <= most:
        raise BatchRefused(f"Concurrency is 1 to {most} targets at a time.")
    limit = options.time_limit_seconds
    ceiling = int(settings.ECSPORTAL_RUN_TIME_LIMIT_SECONDS)
    if limit is not None and not 1 <= int(limit) <= ceiling:
        raise BatchRefused(f"The time limit per target is 1 to {ceiling} seconds.")
    if int(options.stop_after_failures) < 0:
        raise BatchRefused("Stop after failures is 0 (never) or more.")
    return options


def batch_start(
    *,
    user: AbstractBaseUser,
    spec: BatchSpec,
    command: str | None,
    runbook: Runbook | None = None,
    values: dict | None = None,
    options: BatchOptions,
    reason: str = "",
    source_ip: str | None = None,
) -> Batch:
    """Start a batch: its targets run `options.concurrency` at a time. When an account asks for
    approval, the batch waits on one request that binds the command and the target list.

    Raises PermissionDenied (below operator), BatchRefused (a ValidationError) for everything a
    person can fix: an empty or changed target list, bad options, a missing reason."""
    options = _clean_options(options)
    real, shown, mode = _command_for(command=command, runbook=runbook, values=values, raw=options.raw)
    spec = _clean_spec(spec)
    preview = batch_preview(user=user, spec=spec, runbook=runbook)
    if preview.problem:
        raise BatchRefused(preview.problem)
    if spec.expect_targets_sha256 and spec.expect_targets_sha256 != preview.targets_sha256:
        raise BatchRefused(
            f"The matching containers changed since the preview (now {len(preview.targets)} ready): "
            "look at the new preview and start again."
        )
    policy = ("runbook" if runbook.needs_approval else None) if runbook is not None else "command"
    needing = {}
    if policy:
        for target in preview.targets:
            n = approvals_required(account=target.account, policy=policy)
            if n:
                needing[target.account.pk] = (target.account, n)
    if len(needing) > 1:
        names = " and ".join(sorted(a.name for a, _ in needing.values()))
        raise BatchRefused(
            f"Commands on {names} each need approval, and one batch is approved by one account's approvers: "
            "start one batch per account."
        )
    reason = (reason or "").strip()
    if needing and not reason:
        account, n = next(iter(needing.values()))
        raise BatchRefused(f"Commands on {account.name} need {n} approval{'' if n == 1 else 's'}: say why.")
    digest = batch_command_sha256(command=real, mode=mode)
    with transaction.atomic():
        batch = Batch.objects.create(
            requested_by=user,
            command=shown,
            command_sealed=crypto.encrypt(real) if real != shown else "",
            command_has_secrets=real != shown,
            command_sha256=digest,
            targets_sha256=preview.targets_sha256,
            mode=mode,
            runbook_name=runbook.name if runbook is not None else "",
            spec=spec.as_dict(),
            concurrency=int(options.concurrency),
            time_limit_seconds=int(options.time_limit_seconds or settings.ECSPORTAL_RUN_TIME_LIMIT_SECONDS),
            stop_after_failures=int(options.stop_after_failures),
            reason=reason,
            status=BatchStatus.AWAITING_APPROVAL if needing else BatchStatus.RUNNING,
            started_at=None if needing else timezone.now(),
        )
        rows = [
            BatchTarget(
                batch=batch,
                position=i,
                account=t.account,
                region=t.region,
                cluster=t.cluster,
                service=t.service,
                task_arn=t.task.arn,
                container=t.container,
                in_target_list=t.ready,
                state=TargetState.PENDING if t.ready else TargetState.SKIPPED,
                skip_reason=t.reason,
            )
            for i, t in enumerate([*preview.targets, *preview.skipped])
        ]
        BatchTarget.objects.bulk_create(rows)
        for account in {t.account.pk: t.account for t in preview.targets}.values():
            audit_record(
                actor=user,
                action="batch.requested",
                target=f"batch #{batch.pk}",
                account=account,
                details={
                    "batch": batch.pk,
                    "command": shown,
                    "mode": mode,
                    "runbook": batch.runbook_name,
                    "targets": sum(1 for t in preview.targets if t.account.pk == account.pk),
                    "targets_sha256": batch.targets_sha256,
                    "concurrency": batch.concurrency,
                },
                source_ip=source_ip,
            )
        if needing:
            account, _n = next(iter(needing.values()))
            request = approval_request(
                actor=user,
                action=ACTION_BATCH_RUNBOOK if policy == "runbook" else ACTION_BATCH,
                account=account,
                target={
                    "batch": batch.pk,
                    "command": shown,
                    "mode": mode,
                    "command_sha256": digest,
                    "targets_sha256": batch.targets_sha256,
                    "targets": len(preview.targets),
                },
                target_label=f"{shown[:200]} on {len(preview.targets)} containers (batch #{batch.pk})",
                reason=reason,
                source_ip=source_ip,
            )
            Batch.objects.filter(pk=batch.pk).update(approval=request)
            batch.approval = request
        else:
            pk = batch.pk
            transaction.on_commit(lambda: scheduler.kick(pk))
    batch.refresh_from_db()
    return batch


# -- cancel and re-run ----------------------------------------------------------------------------


def _gate(*, user: AbstractBaseUser, batch: Batch) -> None:
    """Operator on every account of the batch's targets (the batch acts on all of them)."""
    accounts = AwsAccount.objects.filter(pk__in=batch.targets.values("account")).distinct()
    for account in accounts:
        role = account_role_for_user(user=user, account=account)
        if role is None or role < Role.OPERATOR:
            raise PermissionDenied(f"Changing this batch needs the operator role on {account.name}.")


def batch_cancel(*, user: AbstractBaseUser, batch: Batch, source_ip: str | None = None) -> Batch:
    """Cancel all: no new target starts, targets not started are skipped, running ones are
    cancelled (Ctrl-C, then closed). A batch waiting for approval is withdrawn (the requester's)."""
    _gate(user=user, batch=batch)
    if batch.status in BATCH_END_STATUSES:
        raise BatchRefused(f"This batch has already ended ({batch.get_status_display().lower()}).")
    who = user.get_username()
    with transaction.atomic():
        if batch.status == BatchStatus.AWAITING_APPROVAL and batch.approval_id:
            try:
                approval_cancel(actor=user, request_pk=batch.approval_id, source_ip=source_ip)
            except PermissionDenied:
                raise BatchRefused(
                    f"Only {batch.requested_by.get_username()}, who asked for this batch, can withdraw it while it "
                    "waits for approval; an approver can reject it instead."
                ) from None
            except ApprovalClosed as exc:
                raise BatchRefused(f"{exc} Reload the page to see where the batch is.") from None
        changed = Batch.objects.filter(pk=batch.pk, status__in=(BatchStatus.AWAITING_APPROVAL, BatchStatus.RUNNING))
        if not changed.update(cancel_requested_at=timezone.now(), cancelled_by=user):
            raise BatchRefused("This batch ended meanwhile; there is nothing to cancel.")
        batch.targets.filter(state=TargetState.PENDING).update(
            state=TargetState.SKIPPED, skip_reason=f"Not started: the batch was cancelled by {who}."
        )
        for account in AwsAccount.objects.filter(pk__in=batch.targets.values("account")).distinct():
            audit_record(
                actor=user,
                action="batch.cancel",
                target=f"batch #{batch.pk}",
                account=account,
                details={"batch": batch.pk},
                source_ip=source_ip,
            )
    active = batch.targets.filter(run__status__in=ACTIVE_STATUSES).values_list("run_id", flat=True)
    for run_pk in list(active):
        try:
            run_cancel(actor=user, run_pk=run_pk, source_ip=source_ip)
        except RunRefused:  # it ended meanwhile, or a cancel was already asked for
            pass
    scheduler.batch_advance(batch.pk)
    batch.refresh_from_db()
    return batch


def batch_rerun_failed(*, user: AbstractBaseUser, batch: Batch, source_ip: str | None = None) -> Batch:
    """A new batch of the same command on the targets that failed (failed, error, timed out),
    with the same options; approved afresh when the account asks for approval. Runbooks with
    secret values cannot be re-run this way (the values are gone): run the runbook again."""
    _gate(user=user, batch=batch)
    if not batch.is_finished:
        raise BatchRefused("Wait for the batch to finish (or cancel it) before re-running its failed targets.")
    if batch.command_has_secrets:
        raise BatchRefused("This batch's command held secret values, which are not kept: run the runbook again.")
    failed = list(batch.targets.filter(run__status__in=FAILED_STATUSES).select_related("account").order_by("position"))
    if not failed:
        raise BatchRefused("No target failed; there is nothing to re-run.")
    return _start_on_targets(user=user, source=batch, targets=failed, source_ip=source_ip)


def _start_on_targets(
    *, user: AbstractBaseUser, source: Batch, targets: list[BatchTarget], source_ip: str | None
) -> Batch:
    """A batch of `source`'s command on exactly `targets` (each checked again when it starts)."""
    for account in {t.account.pk: t.account for t in targets}.values():
        role = account_role_for_user(user=user, account=account)
        if role is None or role < Role.OPERATOR or not account.is_enabled:
            raise PermissionDenied(
                f"Running commands on {account.name} needs the operator role (and the account enabled)."
            )
    keys = [target_key(t) for t in targets]
    policy = "runbook" if source.runbook_name else "command"
    needing = {}
    for t in targets:
        n = approvals_required(account=t.account, policy=policy)
        if n:
            needing[t.account.pk] = (t.account, n)
    if len(needing) > 1:
        raise BatchRefused(
            "The failed targets are on several accounts that each need approval: start one batch per account."
        )
    reason = source.reason or f"Re-run of the failed targets of batch #{source.pk}."
    with transaction.atomic():
        batch = Batch.objects.create(
            requested_by=user,
            command=source.command,
            command_sha256=source.command_sha256,
            targets_sha256=targets_sha256(keys),
            mode=source.mode,
            runbook_name=source.runbook_name,
            spec=source.spec,
            concurrency=source.concurrency,
            time_limit_seconds=source.time_limit_seconds,
            stop_after_failures=source.stop_after_failures,
            reason=reason,
            status=BatchStatus.AWAITING_APPROVAL if needing else BatchStatus.RUNNING,
            started_at=None if needing else timezone.now(),
            rerun_of=source,
        )
        BatchTarget.objects.bulk_create(
            BatchTarget(
                batch=batch,
                position=i,
                account=t.account,
                region=t.region,
                cluster=t.cluster,
                service=t.service,
                task_arn=t.task_arn,
                container=t.container,
            )
            for i, t in enumerate(targets)
        )
        for account in {t.account.pk: t.account for t in targets}.values():
            audit_record(
                actor=user,
                action="batch.requested",
                target=f"batch #{batch.pk}",
                account=account,
                details={"batch": batch.pk, "rerun_of": source.pk, "command": batch.command, "targets": len(targets)},
                source_ip=source_ip,
            )
        if needing:
            account, _n = next(iter(needing.values()))
            request = approval_request(
                actor=user,
                action=ACTION_BATCH_RUNBOOK if policy == "runbook" else ACTION_BATCH,
                account=account,
                target={
                    "batch": batch.pk,
                    "command": batch.command,
                    "mode": batch.mode,
                    "command_sha256": batch.command_sha256,
                    "targets_sha256": batch.targets_sha256,
                    "targets": len(targets),
                },
                target_label=f"{batch.command[:200]} on {len(targets)} containers (batch #{batch.pk})",
                reason=reason,
                source_ip=source_ip,
            )
            Batch.objects.filter(pk=batch.pk).update(approval=request)
        else:
            pk = batch.pk
            transaction.on_commit(lambda: scheduler.kick(pk))
    batch.refresh_from_db()
    return batch
