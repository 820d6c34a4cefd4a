"""The collector: every stopped task ECS still remembers, upserted into history by task ARN.

AWS calls run concurrently across accounts, regions and clusters (`ecs.fan_out*`); the
database is written only from the calling thread, page by page as the answers arrive, so the
progress a page polls is live and no worker thread ever holds a database connection.
One cluster's failure (AccessDenied, throttling after botocore's retries, not found) is
recorded on that cluster's row; the others still collect.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection, transaction
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

_KEEP_ON_CONFLICT = {"id", "account_id", "task_arn", "first_seen_at"}
_UPDATE_FIELDS = [f.name for f in StoppedTask._meta.concrete_fields if f.column not in _KEEP_ON_CONFLICT]


@dataclass(frozen=True)
class _Target:
    account_pk: int
    config: AccountConfig | None  # None when the account's credentials could not be read
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


def collection_execute_in_background(*, run_pk: int) -> threading.Thread:
    """Execute an already created run on a daemon thread (the page polls its progress)."""
    thread = threading.Thread(target=_execute_by_pk, args=(run_pk,), name=f"stopped-run-{run_pk}", daemon=True)
    thread.start()
    return thread


def _execute_by_pk(run_pk: int) -> None:
    try:
        collection_execute(run=CollectionRun.objects.get(pk=run_pk))
    except Exception:
        logger.exception("stopped-task collection %s failed", run_pk)
    finally:
        connection.close()


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
            counts: dict[_Target, list[int]] = {t: [0, 0] for t in targets}
            for target, page, outcome in _pages_as_they_arrive(targets, max_workers):
                if page is not None:
                    seen, new = stopped_tasks_upsert(
                        account_pk=target.account_pk,
                        region=target.region,
                        cluster=target.cluster,
                        tasks=page,
                        now=timezone.now(),
                    )
                    counts[target][0] += seen
                    counts[target][1] += new
                else:
                    _record_cluster(run, target, *counts[target], outcome.error)
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


def _pages_as_they_arrive(
    targets: list[_Target], max_workers: int
) -> Iterator[tuple[_Target, list[records.Task] | None, ecs.Outcome | None]]:
    """Yield (target, page, None) for every described page, then (target, None, outcome) when
    that cluster is done or failed, in the order they happen across all clusters.

    Worker threads do AWS calls only and hand pages over a queue, so the database is written
    from the caller's thread while the other pages are still in flight, instead of after them.
    Pages upserted before a cluster fails stay upserted: partial history beats none.
    """
    events: queue.Queue = queue.Queue()

    def fetch(target: _Target) -> None:
        for page in ecs.stopped_task_pages(target.config, target.region, target.cluster):
            events.put((target, page, None))

    def drive() -> None:
        try:
            for outcome in ecs.fan_out_as_completed(fetch, targets, max_workers=max_workers):
                events.put((outcome.item, None, outcome))
        finally:
            events.put(None)

    threading.Thread(target=drive, name="stopped-fetch", daemon=True).start()
    while (event := events.get()) is not None:
        yield event


def _list_targets(
    run: CollectionRun, accounts: list[AwsAccount], only: Collection[str] | None, max_workers: int
) -> list[_Target]:
    now = timezone.now()
    regions: list[_Target] = []
    for account, config in _verified_configs(run, accounts, now, max_workers):
        regions.extend(_Target(account.pk, config, r) for r in account.regions)
    outcomes = ecs.fan_out(lambda t: ecs.list_clusters(t.config, t.region), regions, max_workers=max_workers)
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


def _verified_configs(
    run: CollectionRun, accounts: list[AwsAccount], now: datetime, max_workers: int
) -> list[tuple[AwsAccount, AccountConfig]]:
    """The accounts whose credentials reach the account they claim to be (STS GetCallerIdentity).

    An account that reaches another one (made-up IDs on one default chain all reach the same
    account) would file that account's tasks under its own name and multiply every count; it
    is recorded as an error on each of its regions and not collected. So is an account whose
    identity cannot be checked: which account its tasks belong to is then unknown.
    """
    configs: list[tuple[AwsAccount, AccountConfig]] = []
    for account in accounts:
        try:
            configs.append((account, account.aws_config()))
        except AwsError as exc:  # e.g. a stored secret no key can decrypt: this account alone fails
            for region in account.regions:
                _save_state(run, _Target(account.pk, None, region), now, error=exc)
    outcomes = ecs.fan_out(
        lambda pair: ecs.verified_identity(pair[1], pair[0].regions[0]), configs, max_workers=max_workers
    )
    verified = []
    for outcome in outcomes:
        account, config = outcome.item
        if outcome.error is None:
            verified.append(outcome.item)
            continue
        logger.warning("stopped-task collection skips account %s: %s", account.pk, outcome.error.code)
        for region in account.regions:
            _save_state(run, _Target(account.pk, config, region), now, error=outcome.error)
    return verified


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


def _record_cluster(run: CollectionRun, target: _Target, seen: int, new: int, error: AwsError | None) -> None:
    now = timezone.now()
    with transaction.atomic():
        run.tasks_seen += seen
        run.tasks_new += new
        if error is not None:
            logger.warning("stopped-task collection failed on %s/%s: %s", target.region, target.cluster, error.code)
            _save_state(run, target, now, error=error)
            run.clusters_failed += 1
        else:
            _save_state(run, target, now, state=ClusterCollection.State.OK, tasks_seen=seen, tasks_new=new)
        run.clusters_done += 1
        run.save(update_fields=["clusters_done", "clusters_failed", "tasks_seen", "tasks_new"])


def stopped_tasks_upsert(
    *, account_pk: int, region: str, cluster: str, tasks: list[records.Task], now: datetime
) -> tuple[int, int]:
    """Insert or refresh one row per task ARN (first seen kept); returns (seen, new)."""
    rows = {
        t.arn: stopped_task_values(t, account_pk=account_pk, region=region, cluster=cluster, now=now) for t in tasks
    }
    if not rows:
        return 0, 0
    arns = list(rows)
    existing: set[str] = set()
    for start in range(0, len(arns), ARN_QUERY_CHUNK):
        chunk = arns[start : start + ARN_QUERY_CHUNK]
        existing.update(
            StoppedTask.objects.filter(account_id=account_pk, task_arn__in=chunk).values_list("task_arn", flat=True)
        )
    _upsert(list(rows.values()))
    return len(rows), len(set(arns) - existing)


def _upsert(rows: list[dict]) -> None:
    """INSERT … ON CONFLICT (account, task ARN) DO UPDATE, one executemany per page.

    The ORM's bulk_create(update_conflicts=True) says the same but spends most of a scan
    preparing values field by field (the benchmark's 10,000 rows: seconds, not a fraction);
    here only datetimes and JSON go through Django's own field preparation. The SQL is the
    same on SQLite and PostgreSQL, and safe when two collectors race on the same rows.
    """
    meta = StoppedTask._meta
    fields = [f for f in meta.concrete_fields if f.name != "id"]
    columns = [f.column for f in fields]
    prepared = [f for f in fields if f.get_internal_type() in ("DateTimeField", "JSONField")]
    quote = connection.ops.quote_name
    updates = ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in columns if c not in _KEEP_ON_CONFLICT)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608 (model identifiers; values are parameters)
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({quote('account_id')}, {quote('task_arn')}) DO UPDATE SET {updates}"
    )
    for row in rows:
        for f in prepared:
            row[f.attname] = f.get_db_prep_save(row[f.attname], connection)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, [[row[f.attname] for f in fields] for row in rows])


def _family_revision(task_definition_arn: str) -> tuple[str, int | None]:
    name = task_definition_arn.rsplit("/", 1)[-1]
    family, _, revision = name.partition(":")
    return family, int(revision) if revision.isdigit() else None


def stopped_task_row(task: records.Task, *, account_pk: int, region: str, cluster: str, now: datetime) -> StoppedTask:
    """The history row for one described task, with its category and signature worked out."""
    return StoppedTask(**stopped_task_values(task, account_pk=account_pk, region=region, cluster=cluster, now=now))


def stopped_task_values(task: records.Task, *, account_pk: int, region: str, cluster: str, now: datetime) -> dict:
    """The row's values by attribute name (`account_id`, …), as the upsert writes them."""
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
    return dict(
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
