"""Reads for batches (never writing): the gate, the list, the summary and its output groups,
the combined transcript, and the hashes an approval binds.

**The gate.** A batch is seen by a user who is a member (viewer or more, the role asked for)
of *every* account its targets are on: a batch across prod and staging is not shown to
someone who sees only staging, so no target of an account a user cannot see ever leaks.
Anyone else gets Http404.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from ecsportal.accounts.models import Role
from ecsportal.accounts.selectors import accounts_for_user, roles_by_account_for_user
from ecsportal.batches.models import FAILED_STATUSES, Batch, BatchTarget, TargetState
from ecsportal.runs.models import END_STATUSES, RunChunk, RunStatus
from ecsportal.runs.transcript import strip_escapes

SAMPLE_BYTES = 4096  # a group's output shown on the page; the downloads hold all of it


def key_of(*, account_pk: int, region: str, cluster: str, task_arn: str, container: str) -> str:
    return "\0".join((str(account_pk), region, cluster, task_arn, container))


def target_key(target: BatchTarget) -> str:
    return key_of(
        account_pk=target.account_id,
        region=target.region,
        cluster=target.cluster,
        task_arn=target.task_arn,
        container=target.container,
    )


def targets_sha256(keys: list[str]) -> str:
    """What an approval binds a batch's targets by: the ordered list of exact targets."""
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


def batch_command_sha256(*, command: str, mode: str) -> str:
    """What an approval binds a batch's command by: the real command and its mode."""
    return hashlib.sha256(f"{mode}\0{command}".encode()).hexdigest()


# -- the gate -------------------------------------------------------------------------------------


def batches_for_user(*, user: AbstractBaseUser, min_role: Role = Role.VIEWER) -> QuerySet[Batch]:
    """Batches all of whose targets are on accounts where the user holds `min_role` or more."""
    mine = accounts_for_user(user=user, min_role=min_role).values("pk")
    foreign = BatchTarget.objects.exclude(account__in=mine).values("batch")
    return Batch.objects.filter(targets__account__in=mine).exclude(pk__in=foreign).distinct()


def batch_get_for_user(*, user: AbstractBaseUser, pk: int | str, min_role: Role = Role.VIEWER) -> Batch:
    """The batch, or Http404 (not seen: its existence never leaks); PermissionDenied when the
    user sees it but holds less than `min_role` on one of its accounts."""
    try:
        batch_pk = int(pk)
    except (TypeError, ValueError, OverflowError):
        raise Http404("No such batch.") from None
    batch = batches_for_user(user=user).select_related("requested_by", "approval").filter(pk=batch_pk).first()
    if batch is None:
        raise Http404("No such batch.")
    if min_role > Role.VIEWER:
        roles = roles_by_account_for_user(user=user)
        # roles_by_account_for_user answers superusers too, capped by an API token's scope.
        for account_pk in set(batch.targets.values_list("account_id", flat=True)):
            if roles.get(account_pk, Role.VIEWER) < min_role:
                raise PermissionDenied(
                    f"This needs the {Role(min_role).label.lower()} role on every account of the batch."
                )
    return batch


def can_operate(*, user: AbstractBaseUser, batch: Batch) -> bool:
    try:
        batch_get_for_user(user=user, pk=batch.pk, min_role=Role.OPERATOR)
    except (Http404, PermissionDenied):
        return False
    return True


# -- the summary ----------------------------------------------------------------------------------


def outcome_of(target: BatchTarget) -> str:
    """The target's outcome in one word: its run's status, else its own state."""
    return target.run.status if target.run_id and target.run is not None else target.state


def _duration(target: BatchTarget) -> float | None:
    run = target.run if target.run_id else None
    return None if run is None or run.duration_seconds is None else round(run.duration_seconds, 3)


@dataclass(frozen=True)
class OutputGroup:
    number: int  # 1, 2, … (largest first)
    status: str
    exit_code: int | None
    output_sha256: str
    targets: list[BatchTarget]

    @property
    def sentence(self) -> str:
        n = len(self.targets)
        who = f"{n} target{'' if n == 1 else 's'}"
        if self.status in (RunStatus.SUCCEEDED, RunStatus.FAILED):
            what = f"exited {self.exit_code}"
        else:
            what = RunStatus(self.status).label.lower()
        same = " with the same output" if n > 1 else ""
        return f"{who} {what}{same}"


def targets_of(batch: Batch) -> list[BatchTarget]:
    return list(batch.targets.select_related("account", "run").order_by("position"))


def output_groups(targets: list[BatchTarget]) -> list[OutputGroup]:
    """Ended targets whose stored output (its sha256 at the run's end), status and exit code
    are the same, each group once: "9 exited 0 with the same output, 1 exited 2"."""
    keyed: dict[tuple[str, int | None, str], list[BatchTarget]] = {}
    for target in targets:
        run = target.run if target.run_id else None
        if run is None or run.status not in END_STATUSES or not target.output_sha256:
            continue
        keyed.setdefault((run.status, run.exit_code, target.output_sha256), []).append(target)
    ordered = sorted(keyed.items(), key=lambda item: (-len(item[1]), item[1][0].position))
    return [
        OutputGroup(number=i, status=key[0], exit_code=key[1], output_sha256=key[2], targets=members)
        for i, (key, members) in enumerate(ordered, start=1)
    ]


def group_sample(group: OutputGroup) -> tuple[str, bool]:
    """The group's output as text (escapes stripped), at most SAMPLE_BYTES; and whether it was cut."""
    run = group.targets[0].run
    data = bytearray()
    for chunk in RunChunk.objects.filter(run=run).order_by("seq").values_list("data", flat=True).iterator():
        data.extend(bytes(chunk))
        if len(data) > SAMPLE_BYTES:
            break
    cut = len(data) > SAMPLE_BYTES
    return strip_escapes(bytes(data[:SAMPLE_BYTES]).decode("utf-8", "replace")), cut


def counts_by_outcome(targets: list[BatchTarget]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for target in targets:
        outcome = outcome_of(target)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def failed_count(targets: list[BatchTarget]) -> int:
    return sum(1 for t in targets if t.run_id and t.run is not None and t.run.status in FAILED_STATUSES)


def batch_summary(batch: Batch) -> dict[str, Any]:
    """The JSON summary: the batch, its counts, and per target account, cluster, task,
    container, status, exit code, duration, bytes and output group."""
    targets = targets_of(batch)
    groups = output_groups(targets)
    group_of = {t.pk: g.number for g in groups for t in g.targets}
    return {
        "batch": batch.pk,
        "status": batch.status,
        "command": batch.command,
        "mode": batch.mode,
        "runbook": batch.runbook_name or None,
        "requested_by": batch.requested_by.get_username(),
        "created_at": batch.created_at.isoformat(),
        "started_at": batch.started_at.isoformat() if batch.started_at else None,
        "ended_at": batch.ended_at.isoformat() if batch.ended_at else None,
        "end_reason": batch.end_reason,
        "concurrency": batch.concurrency,
        "time_limit_seconds": batch.time_limit_seconds,
        "stop_after_failures": batch.stop_after_failures,
        "targets_sha256": batch.targets_sha256,
        "counts": counts_by_outcome(targets),
        "groups": [
            {
                "group": g.number,
                "status": g.status,
                "exit_code": g.exit_code,
                "output_sha256": g.output_sha256,
                "count": len(g.targets),
                "summary": g.sentence,
            }
            for g in groups
        ],
        "targets": [
            {
                "account": t.account.name,
                "account_id": t.account.account_id,
                "region": t.region,
                "cluster": t.cluster,
                "service": t.service,
                "task": t.task_id,
                "task_arn": t.task_arn,
                "container": t.container,
                "in_target_list": t.in_target_list,
                "status": outcome_of(t),
                "skip_reason": t.skip_reason or None,
                "run": t.run_id,
                "exit_code": t.run.exit_code if t.run_id and t.run else None,
                "duration_seconds": _duration(t),
                "bytes": t.run.bytes_out if t.run_id and t.run else 0,
                "output_group": group_of.get(t.pk),
            }
            for t in targets
        ],
    }


def combined_transcript(batch: Batch) -> Iterator[str]:
    """Every started target's output as text, each line prefixed with its target, target after
    target in the batch's order (escapes stripped as a terminal would show them)."""
    for target in targets_of(batch):
        if not target.run_id:
            continue
        prefix = f"[{target.label}] "
        pending = ""
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        chunks = RunChunk.objects.filter(run_id=target.run_id).order_by("seq").values_list("data", flat=True)
        for data in chunks.iterator(chunk_size=100):
            pending += decoder.decode(bytes(data))
            *lines, pending = pending.split("\n")
            for line in lines:
                yield prefix + strip_escapes(line.rstrip("\r")) + "\n"
        pending += decoder.decode(b"", final=True)
        if pending:
            yield prefix + strip_escapes(pending.rstrip("\r")) + "\n"
        status = outcome_of(target)
        code = f" {target.run.exit_code}" if target.run and target.run.exit_code is not None else ""
        yield f"[{target.label}] -- {status}{code}\n"


def active_batch(batch: Batch) -> bool:
    return not batch.is_finished or batch.targets.filter(state=TargetState.STARTING).exists()
