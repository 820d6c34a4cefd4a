"""The hourly sums (`StoppedHour`) equal a count over the rows after every writer, and the page's
signatures and chart read from them equal the same read from the rows, the range's part-hour
included. Run on SQLite and (CI) PostgreSQL: each has triggers of its own."""

from __future__ import annotations

import importlib
import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Case, F, Sum, Value, When
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ecsportal.aws import records
from ecsportal.stopped import selectors
from ecsportal.stopped.chart import WINDOWS
from ecsportal.stopped.collector import _UPDATE_FIELDS, stopped_task_row, stopped_tasks_upsert
from ecsportal.stopped.demo import seed_demo_history
from ecsportal.stopped.forms import StoppedFilters
from ecsportal.stopped.models import StoppedHour, StoppedTask
from ecsportal.stopped.services import stopped_prune

pytestmark = pytest.mark.django_db

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KINDS = [  # (stop code, reason, exit code, container reason): four categories
    ("EssentialContainerExited", "Essential container in task exited", 137, "OutOfMemoryError: killed"),
    ("EssentialContainerExited", "Essential container in task exited", 1, ""),
    ("ServiceSchedulerInitiated", "Scaling activity initiated by (deployment ecs-svc/1)", 143, ""),
    ("TaskFailedToStart", "CannotPullContainerError: pull failed for acme/api:1", None, ""),
]
_numbers = iter(range(10**6))


def _task(account, at: datetime, *, kind: int = 1, service: str = "web", stopped: bool = True, n: int | None = None):
    """A described task as ECS gives it; `stopped=False`: still stopping (no stoppedAt yet)."""
    n = next(_numbers) if n is None else n
    stop_code, reason, exit_code, why = KINDS[kind]
    return records.Task(
        arn=f"arn:aws:ecs:eu-west-1:{account.account_id}:task/c1/{n:032x}",
        cluster_arn=f"arn:aws:ecs:eu-west-1:{account.account_id}:cluster/c1",
        last_status="STOPPED" if stopped else "DEPROVISIONING",
        desired_status="STOPPED",
        launch_type="FARGATE",
        capacity_provider="",
        platform_version="1.4.0",
        task_definition_arn=f"arn:aws:ecs:eu-west-1:{account.account_id}:task-definition/web:3",
        group=f"service:{service}" if service else "family:web",
        started_by="",
        availability_zone="eu-west-1a",
        enable_execute_command=False,
        started_at=at - timedelta(minutes=20),
        stopping_at=at,
        stopped_at=at if stopped else None,
        execution_stopped_at=at if stopped else None,
        stop_code=stop_code,
        stopped_reason=reason,
        containers=(records.Container("app", "", "STOPPED", "img", "", exit_code, why, ""),),
    )


def _upsert(account, tasks: list) -> None:
    stopped_tasks_upsert(account_pk=account.pk, region="eu-west-1", cluster="c1", tasks=tasks, now=timezone.now())


def _recounted() -> dict:
    """The sums worked out the slow way, row by row (the hour from `stopped_at`, exactly)."""
    sums: dict[tuple, tuple] = {}
    for r in StoppedTask.objects.all():
        key = (r.account_id, (r.stopped_at - EPOCH) // timedelta(hours=1), r.category, r.signature, r.service)
        n, first, last, sample = sums.get(key, (0, r.stopped_at, r.stopped_at, r.pk))
        sums[key] = (n + 1, min(first, r.stopped_at), max(last, r.stopped_at), max(sample, r.pk))
    return sums


def _kept() -> dict:
    return {
        (h.account_id, h.hour, h.category, h.signature, h.service): (h.tasks, h.first_at, h.last_at, h.sample)
        for h in StoppedHour.objects.all()
    }


def assert_exact() -> None:
    assert _kept() == _recounted()


@pytest.fixture
def now() -> datetime:
    """37 minutes into the current hour: a range's start then falls inside an hour."""
    return timezone.now().replace(minute=37, second=0, microsecond=0)


@pytest.fixture
def history(cast, now):
    """Rows over two visible accounts and a hidden one, ten days, several services and kinds;
    some in the hours the ranges start in, on both sides of each start."""
    rng = random.Random(21)
    for account in (cast.prod, cast.staging, cast.other):
        tasks = [
            _task(account, now - timedelta(minutes=rng.randrange(-30, 10 * 24 * 60)), kind=rng.randrange(4),
                  service=rng.choice(["web", "api", ""]))
            for _ in range(120)
        ]  # fmt: skip
        for hours in (1, 6, 24, 7 * 24):
            for minutes in (-20, -1, 1, 20):  # the range starts at now - hours
                tasks.append(_task(account, now - timedelta(hours=hours, minutes=minutes), kind=minutes % 4))
        _upsert(account, tasks)


def test_inserts_updates_and_deletes_keep_the_sums_exact(cast, history, now):
    assert_exact()
    assert StoppedHour.objects.count() > 100
    hour = now.replace(minute=0) - timedelta(hours=30)
    minutes = [30, 54, 0, 12, 42, 6, 48, 18, 36, 24]  # the greatest ID is neither the earliest nor the latest
    _upsert(cast.prod, [_task(cast.prod, hour + timedelta(minutes=m), kind=2, service="batch") for m in minutes])
    assert_exact()
    in_group = list(StoppedTask.objects.filter(service="batch"))
    for doomed in (  # its earliest, its latest, its sample: each read again from the rows
        min(in_group, key=lambda r: r.stopped_at),
        max(in_group, key=lambda r: r.stopped_at),
        max(in_group, key=lambda r: r.pk),
    ):
        assert StoppedTask.objects.filter(pk=doomed.pk).delete()[0] == 1
        assert_exact()
    # One statement moving many rows across hours, groups losing and gaining rows at once.
    assert StoppedTask.objects.filter(account=cast.prod).update(stopped_at=F("stopped_at") - timedelta(minutes=30))
    assert_exact()
    swapped = StoppedTask.objects.filter(account=cast.staging, service__in=["web", "api"])
    assert swapped.update(service=Case(When(service="web", then=Value("api")), default=Value("web")))
    assert_exact()
    one = StoppedTask.objects.filter(account=cast.staging).first()
    StoppedTask.objects.filter(pk=one.pk).update(category="user-initiated", signature="0" * 40)
    assert_exact()
    # A whole group in one statement: no sums left for it.
    group = StoppedHour.objects.filter(account=cast.prod, tasks__gte=2).first()
    start = EPOCH + timedelta(hours=group.hour)
    whole = StoppedTask.objects.filter(
        account=cast.prod, signature=group.signature, service=group.service, category=group.category,
        stopped_at__gte=start, stopped_at__lt=start + timedelta(hours=1),
    )  # fmt: skip
    assert whole.delete()[0] == group.tasks
    assert not StoppedHour.objects.filter(pk=group.pk).exists()
    assert_exact()
    assert stopped_prune(days=3) > 0  # retention: a multi-row delete over many hours
    assert_exact()
    cast.staging.delete()  # the account's cascade
    assert not StoppedHour.objects.filter(account_id=cast.staging.pk).exists()
    assert_exact()


def test_the_collector_s_upsert_moves_a_task_when_its_hour_or_category_changes(cast, now):
    at = now - timedelta(hours=3)
    stopping = [_task(cast.prod, at, kind=1, stopped=False, n=900 + i) for i in range(3)]
    _upsert(cast.prod, stopping + [_task(cast.prod, at, kind=1)])
    assert_exact()
    assert StoppedHour.objects.get(account=cast.prod).tasks == 4
    # ECS now reports them stopped, 90 minutes later, and one as killed for memory.
    later = at + timedelta(minutes=90)
    stopped = [_task(cast.prod, later, kind=0 if i == 0 else 1, n=900 + i) for i in range(3)]
    _upsert(cast.prod, stopped)
    assert_exact()
    hour = (later - EPOCH) // timedelta(hours=1)
    assert sorted(StoppedHour.objects.filter(hour=hour).values_list("category", "tasks")) == [
        ("exit-1", 2),
        ("out-of-memory", 1),
    ]
    _upsert(cast.prod, stopped)  # the next pass: nothing moves
    assert_exact()


def test_bulk_inserts_and_the_demo_s_upsert_keep_the_sums_exact(cast, now):
    rows = [
        stopped_task_row(_task(cast.prod, now - timedelta(minutes=7 * i), kind=i % 4, n=5000 + i),
                         account_pk=cast.prod.pk, region="eu-west-1", cluster="c1", now=now)
        for i in range(60)
    ]  # fmt: skip
    StoppedTask.objects.bulk_create(rows, batch_size=25)
    assert_exact()
    moved = [
        stopped_task_row(_task(cast.prod, now - timedelta(hours=2, minutes=i), kind=(i + 1) % 4, n=5000 + i),
                         account_pk=cast.prod.pk, region="eu-west-1", cluster="c1", now=now)
        for i in range(0, 60, 3)
    ]  # fmt: skip
    StoppedTask.objects.bulk_create(
        moved, batch_size=7, update_conflicts=True, unique_fields=["account", "task_arn"], update_fields=_UPDATE_FIELDS
    )  # as the demo writes its week
    assert StoppedTask.objects.count() == 60
    assert_exact()


def test_the_demo_s_week_is_summed(local_aws, cast):
    assert seed_demo_history() > 0
    assert_exact()


def test_the_last_microsecond_of_an_hour_is_that_hour_s(cast, now):
    hour = now.replace(minute=0) - timedelta(hours=2)
    _upsert(cast.prod, [_task(cast.prod, hour - timedelta(microseconds=1)), _task(cast.prod, hour)])
    first = (hour - EPOCH) // timedelta(hours=1)
    assert sorted(StoppedHour.objects.values_list("hour", "tasks")) == [(first - 1, 1), (first, 1)]
    assert_exact()


def test_the_migration_s_backfill_sums_the_rows_already_there(cast, history):
    migration = importlib.import_module("ecsportal.stopped.migrations.0005_hourly_sums")
    kept = _kept()
    StoppedHour.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute(migration.BACKFILL[connection.vendor])
    assert _kept() == kept == _recounted()


FILTERS = [
    {},
    {"account": "prod"},
    {"category": "out-of-memory"},
    {"service": "api"},
    {"service": "api", "category": "exit-1", "account": "staging"},
    {"signature": "the most frequent"},
]


@pytest.mark.parametrize("chart", ["24h", "7d"])
@pytest.mark.parametrize("range_", ["1h", "6h", "24h", "7d", "all"])
@pytest.mark.parametrize("given", FILTERS, ids=lambda f: "-".join(f) or "none")
def test_the_page_s_sums_equal_the_rows_counted(cast, history, now, monkeypatch, range_, chart, given):
    values = {k: getattr(cast, v).pk if k == "account" else v for k, v in given.items()}
    if "signature" in values:  # the chart alone (the page lists no signatures under one)
        values["signature"] = (
            StoppedHour.objects.values("signature").annotate(n=Sum("tasks")).order_by("-n")[0]["signature"]
        )
    filters = StoppedFilters(range=range_, chart=chart, **values)
    with CaptureQueriesContext(connection) as read:
        summed = selectors.stopped_page_for_user(user=cast.viewer, filters=filters, now=now)
    assert any("stopped_stoppedhour" in q["sql"] for q in read.captured_queries)
    monkeypatch.setattr(selectors, "HOURLY_VENDORS", ())  # a database without the triggers
    with CaptureQueriesContext(connection) as read:
        counted = selectors.stopped_page_for_user(user=cast.viewer, filters=filters, now=now)
    assert not any("stopped_stoppedhour" in q["sql"] for q in read.captured_queries)
    assert summed.signatures == counted.signatures
    assert summed.chart == counted.chart
    if not given:
        assert summed.signatures and summed.chart.total
    if "signature" in given:
        assert summed.chart.total and not summed.signatures


@pytest.mark.parametrize(
    "given", [{"cluster": "c1"}, {"region": "eu-west-1"}, {"stop_code": "TaskFailedToStart"}, {"q": "api"}]
)
def test_filters_the_sums_do_not_keep_read_the_rows(cast, history, now, given):
    with CaptureQueriesContext(connection) as read:
        page = selectors.stopped_page_for_user(user=cast.viewer, filters=StoppedFilters(range="7d", **given), now=now)
    assert page.signatures and page.chart.total
    assert not any("stopped_stoppedhour" in q["sql"] for q in read.captured_queries)


def test_a_filter_added_later_reads_the_rows_until_the_sums_are_taught_it(cast):
    @dataclass(frozen=True)
    class Later(StoppedFilters):
        launch_type: str = ""

    assert selectors._hours_of([cast.prod.pk], filters=Later(launch_type="FARGATE")) is None
    assert selectors._hours_of([cast.prod.pk], filters=Later(range="7d", chart="7d", service="web")) is not None


@pytest.mark.parametrize("window", ["24h", "7d"])
def test_each_bar_of_the_chart_counts_the_rows_of_its_hours(cast, history, now, window):
    """The bars are summed per bar in the database: each category's total over the drawn bars
    equals the visible rows whose hour falls in them, counted one by one."""
    chart = selectors.stopped_page_for_user(user=cast.viewer, filters=StoppedFilters(chart=window), now=now).chart
    span, per_bar = WINDOWS[window]
    now_hour = (now - EPOCH) // timedelta(hours=1)
    last_bar = now_hour - now_hour % per_bar
    first_bar = last_bar - (span // per_bar - 1) * per_bar
    expected: dict[str, int] = {}
    for r in StoppedTask.objects.filter(account__in=[cast.prod, cast.staging]):
        if first_bar <= (r.stopped_at - EPOCH) // timedelta(hours=1) < last_bar + per_bar:
            expected[r.category] = expected.get(r.category, 0) + 1
    assert {c.id: n for c, n in chart.legend} == expected
    assert sum(row.total for row in chart.rows) == chart.total == sum(expected.values())
    assert len(chart.rows) > span // per_bar // 2


@pytest.mark.django_db(transaction=True)
def test_a_delete_that_waits_for_another_reads_the_group_again_after_it_commits(cast, now):
    """Two transactions delete from one group at once: the second waits on the group's sums
    until the first commits, then re-reads the group's earliest row in a statement of its own,
    which sees the first's delete (a re-read as of its own start would find the row gone)."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    hour = now.replace(minute=0) - timedelta(hours=5)
    _upsert(cast.prod, [_task(cast.prod, hour + timedelta(minutes=m), kind=2) for m in (5, 10, 15, 20)])
    earliest, second = StoppedTask.objects.order_by("stopped_at")[:2]
    deleted, may_commit = threading.Event(), threading.Event()

    def first_writer() -> None:  # deletes the second earliest (no re-read) and holds the sums
        try:
            with transaction.atomic():
                StoppedTask.objects.filter(pk=second.pk).delete()
                deleted.set()
                may_commit.wait(10)
        finally:
            connection.close()

    def second_writer() -> None:  # deletes the earliest: waits, then re-reads
        try:
            with transaction.atomic():
                StoppedTask.objects.filter(pk=earliest.pk).delete()
        finally:
            connection.close()

    first = threading.Thread(target=first_writer)
    first.start()
    assert deleted.wait(10)
    waiting = threading.Thread(target=second_writer)
    waiting.start()
    waiting.join(0.5)
    assert waiting.is_alive()  # queued on the group's sums
    may_commit.set()
    first.join(10)
    waiting.join(10)
    assert not waiting.is_alive()
    assert StoppedHour.objects.get().tasks == 2
    assert_exact()
