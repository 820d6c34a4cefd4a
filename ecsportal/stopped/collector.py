"""The collector: every stopped task ECS still remembers, upserted into history by task ARN.

AWS calls run concurrently across accounts, regions and clusters (`ecs.fan_out*`); the
database is written only from the calling thread, as each cluster's answer arrives, so the
progress a page polls is live and no worker thread ever holds a database connection.
One cluster's failure (AccessDenied, throttling after botocore's retries, not found) is
recorded on that cluster's row; the others still collect.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from ecsportal.accounts.models import AwsAccount
from ecsportal.aws import ecs, records
from ecsportal.aws.errors import AwsError
from ecsportal.aws.sessions import AccountConfig
from ecsportal.stopped import categories
from ecsportal.stopped.models import ClusterCollection, CollectionRun, StoppedTask

logger = logging.getLogger(__name__)

MAX_WORKERS = 16
ARN_QUERY_CHUNK = 500
# One collection at a time in this process: a click on "Refresh now" while the periodic
# collector runs waits for it instead of racing it on the same rows.
_collect_lock = threading.Lock()

_UPDATE_FIELDS = [
    f.name
    for f in StoppedTask._meta.concrete_fields
    if f.name not in {"id", "account", "task_arn", "first_seen_at"}
]


@dataclass(frozen=True)
class _Target:
    account_pk: int
    config: AccountConfig
    region: str
    cluster: str = ""


def stopped_collect(
    *,
    trigger: str,
    accounts: Iterable[AwsAccount] | None = None,
    clusters: Collection[str] | None = None,
    user: AbstractBaseUser | None = None,
) -> CollectionRun:
    """Create a run over `accounts` (default: every enabled account) and execute it now."""
    run = CollectionRun.objects.create(
        trigger=trigger,
        requested_by=user if user is not None and user.is_authenticated else None,
        account_pks=[a.pk for a in accounts] if accounts is not None else [],
    )
    return collection_execute(run=run, clusters=clusters)


def run_accounts(run: CollectionRun) -> list[AwsAccount]:
    accounts = AwsAccount.objects.filter(is_enabled=True).order_by("name")
    if run.account_pks:
        accounts = accounts.filter(pk__in=run.account_pks)
    return list(accounts)


def collection_execute(
    *, run: CollectionRun, clusters: Collection[str] | None = None, max_workers: int = MAX_WORKERS
) -> CollectionRun:
    """List clusters per account and region, then collect every cluster; returns the finished run."""
    with _collect_lock:
        try:
            targets = _list_targets(run, run_accounts(run), clusters, max_workers)
            for outcome in ecs.fan_out_as_completed(_fetch, targets, max_workers=max_workers):
                _record_cluster(run, outcome.item, outcome.result, outcome.error)
        finally:
            run.finished_at = timezone.now()
            run.save(update_fields=["finished_at"])
    logger.info(
        "stopped-task collection %s: %s clusters, %s failed, %s tasks (%s new)",
        run.pk,
        run.clusters_total,
        run.clusters_failed,
        run.tasks_seen,
        run.tasks_new,
    )
    return run


def _fetch(target: _Target) -> list[records.Task]:
    """Runs on a worker thread: AWS only, no database."""
    return ecs.stopped_tasks(target.config, target.region, target.cluster)


def _list_targets(
    run: CollectionRun, accounts: list[AwsAccount], only: Collection[str] | None, max_workers: int
) -> list[_Target]:
    regions = [_Target(a.pk, a.aws_config(), r) for a in accounts for r in a.regions]
    outcomes = ecs.fan_out(
        lambda t: ecs.list_clusters(t.config, t.region), regions, max_workers=max_workers
    )
    now = timezone.now()
    targets: list[_Target] = []
    for outcome in outcomes:
        region = outcome.item
        if outcome.error is not None:
            _save_state(run, region, now, error=outcome.error)
            continue
        names = [c.name for c in outcome.result or [] if only is None or c.name in only]
        ClusterCollection.objects.filter(account_id=region.account_pk, region=region.region, cluster="").delete()
        if only is None:  # a full listing: forget clusters that no longer exist
            ClusterCollection.objects.filter(account_id=region.account_pk, region=region.region).exclude(
                cluster__in=names
            ).delete()
        for name in names:
            target = _Target(region.account_pk, region.config, region.region, name)
            _save_state(run, target, now, state=ClusterCollection.State.QUEUED)
            targets.append(target)
    if only is None:  # regions no longer enabled on an account
        for account in accounts:
            ClusterCollection.objects.filter(account=account).exclude(region__in=account.regions).delete()
    run.clusters_total = len(targets)
    run.save(update_fields=["clusters_total"])
    return targets


def _save_state(
    run: CollectionRun, target: _Target, now: datetime, *, state: str = "", error: AwsError | None = None, **extra
) -> None:
    values: dict = {"run": run, "last_attempt_at": now, **extra}
    if error is not None:
        values.update(
            state=ClusterCollection.State.ERROR,
            last_error=str(error),
            last_error_code=error.code[:128],
            last_error_kind=error.kind,
        )
    else:
        values["state"] = state
        if state == ClusterCollection.State.OK:
            values.update(last_ok_at=now, last_error="", last_error_code="", last_error_kind="")
    ClusterCollection.objects.update_or_create(
        account_id=target.account_pk, region=target.region, cluster=target.cluster, defaults=values
    )


def _record_cluster(
    run: CollectionRun, target: _Target, tasks: list[records.Task] | None, error: AwsError | None
) -> None:
    now = timezone.now()
    with transaction.atomic():
        if error is not None:
            logger.warning("stopped-task collection failed on %s/%s: %s", target.region, target.cluster, error.code)
            _save_state(run, target, now, error=error)
            run.clusters_failed += 1
        else:
            seen, new = stopped_tasks_upsert(
                account_pk=target.account_pk, region=target.region, cluster=target.cluster, tasks=tasks or [], now=now
            )
            _save_state(run, target, now, state=ClusterCollection.State.OK, tasks_seen=seen, tasks_new=new)
            run.tasks_seen += seen
            run.tasks_new += new
        run.clusters_done += 1
        run.save(update_fields=["clusters_done", "clusters_failed", "tasks_seen", "tasks_new"])


def stopped_tasks_upsert(
    *, account_pk: int, region: str, cluster: str, tasks: list[records.Task], now: datetime
) -> tuple[int, int]:
    """Insert or refresh one row per task ARN (first seen kept); returns (seen, new)."""
    rows = {t.arn: stopped_task_row(t, account_pk=account_pk, region=region, cluster=cluster, now=now) for t in tasks}
    if not rows:
        return 0, 0
    arns = list(rows)
    existing: set[str] = set()
    for start in range(0, len(arns), ARN_QUERY_CHUNK):
        chunk = arns[start : start + ARN_QUERY_CHUNK]
        existing.update(
            StoppedTask.objects.filter(account_id=account_pk, task_arn__in=chunk).values_list("task_arn", flat=True)
        )
    # INSERT … ON CONFLICT DO UPDATE: one statement per batch, and safe if two collectors race.
    StoppedTask.objects.bulk_create(
        list(rows.values()),
        batch_size=250,
        update_conflicts=True,
        unique_fields=["account", "task_arn"],
        update_fields=_UPDATE_FIELDS,
    )
    return len(rows), len(set(arns) - existing)


def _family_revision(task_definition_arn: str) -> tuple[str, int | None]:
    name = task_definition_arn.rsplit("/", 1)[-1]
    family, _, revision = name.partition(":")
    return family, int(revision) if revision.isdigit() else None


def stopped_task_row(task: records.Task, *, account_pk: int, region: str, cluster: str, now: datetime) -> StoppedTask:
    """The history row for one described task, with its category and signature worked out."""
    family, revision = _family_revision(task.task_definition_arn)
    facts = [categories.ContainerFacts(c.name, c.exit_code, c.reason) for c in task.containers]
    explained = categories.classify(stop_code=task.stop_code, stopped_reason=task.stopped_reason, containers=facts)
    normalized = categories.normalize_reason(explained.reason)
    containers = [
        {
            "name": c.name,
            "image": c.image,
            "image_digest": c.image_digest,
            "exit_code": c.exit_code,
            "reason": c.reason,
            "last_status": c.last_status,
            "runtime_id": c.runtime_id,
        }
        for c in task.containers
    ]
    search = " ".join(
        [task.id, task.service_name, family, task.stop_code, task.stopped_reason]
        + [f"{c.name} {c.reason} {c.image}" for c in task.containers]
    )
    stopped_at = task.stopped_at or task.stopping_at or now
    return StoppedTask(
        account_id=account_pk,
        region=region,
        cluster=cluster,
        task_arn=task.arn,
        service=task.service_name,
        group=task.group,
        started_by=task.started_by,
        task_definition_arn=task.task_definition_arn,
        family=family,
        revision=revision,
        launch_type=task.launch_type,
        capacity_provider=task.capacity_provider,
        platform_version=task.platform_version,
        availability_zone=task.availability_zone,
        last_status=task.last_status,
        desired_status=task.desired_status,
        stop_code=task.stop_code,
        stopped_reason=task.stopped_reason,
        started_at=task.started_at,
        stopping_at=task.stopping_at,
        stopped_at=stopped_at,
        stopped_at_reported=task.stopped_at is not None,
        stopped_hour=int(stopped_at.timestamp() // 3600),
        execution_stopped_at=task.execution_stopped_at,
        containers=containers,
        category=explained.category.id,
        signature=categories.signature_key(
            category_id=explained.category.id,
            family=family,
            container=explained.container,
            normalized_reason=normalized,
        ),
        signature_container=explained.container,
        signature_text=normalized,
        search_text=search.lower()[:4000],
        first_seen_at=now,
        last_seen_at=now,
    )
