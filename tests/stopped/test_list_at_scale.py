"""The on-call page's sums at scale: what the index-only GROUP BY gives equals what the rows say,
the aggregates read the covering index alone, and the page's queries do not grow with the rows."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ecsportal.stopped import categories
from ecsportal.stopped.aggregates import chart_of, failures_of, signatures_of
from ecsportal.stopped.forms import StoppedFilters
from ecsportal.stopped.models import StoppedTask
from ecsportal.stopped.selectors import stopped_tasks_for_user
from ecsportal.stopped.services import stopped_prune
from tests.stopped.helpers import row

pytestmark = pytest.mark.django_db

KINDS = [
    ("EssentialContainerExited", "Essential container in task exited", (("app", 137, "OutOfMemoryError: killed"),)),
    ("EssentialContainerExited", "Essential container in task exited", (("app", 1, ""),)),
    ("ServiceSchedulerInitiated", "Scaling activity initiated by (deployment ecs-svc/1)", (("app", 143, ""),)),
    ("TaskFailedToStart", "CannotPullContainerError: pull failed for acme/api:1", (("app", None, ""),)),
]


@pytest.fixture
def history(cast):
    """Rows over two visible accounts and one hidden one, several services per signature."""
    rng = random.Random(15)
    rows = []
    for n in range(90):
        stop_code, reason, containers = KINDS[rng.randrange(len(KINDS))]
        account = (cast.prod, cast.staging, cast.other)[n % 3]
        service = ["web", "api", ""][rng.randrange(3)]
        rows.append(
            row(account, service=service, family="web", minutes_ago=rng.randrange(1, 60 * 30),
                cluster=f"c{n % 4}", stop_code=stop_code, reason=reason, containers=containers)
        )  # fmt: skip
    return rows


def _expected(rows: list[StoppedTask]) -> list[tuple]:
    """The signatures worked out the slow way, row by row."""
    groups: dict[str, list[StoppedTask]] = defaultdict(list)
    for r in rows:
        groups[r.signature].append(r)
    found = [
        (
            key,
            len(items),
            min(r.stopped_at for r in items),
            max(r.stopped_at for r in items),
            sorted({r.service or "(standalone)" for r in items}),
            items[0].category,
        )
        for key, items in groups.items()
    ]
    found.sort(key=lambda s: (categories.category(s[5]).is_routine, -s[1], -s[3].timestamp()))
    return found


def _shown(signatures) -> list[tuple]:
    return [(s.key, s.count, s.first_seen, s.last_seen, s.services, s.category.id) for s in signatures]


def _visible(cast, rows, hours: int | None = 24) -> list[StoppedTask]:
    since = timezone.now() - timezone.timedelta(hours=hours) if hours else None
    return [
        r
        for r in StoppedTask.objects.filter(pk__in=[r.pk for r in rows])
        if r.account_id in (cast.prod.pk, cast.staging.pk) and (since is None or r.stopped_at >= since)
    ]


def test_the_signatures_equal_the_rows_counted_one_by_one(cast, history):
    qs = stopped_tasks_for_user(user=cast.viewer, filters=StoppedFilters())
    shown = signatures_of(qs, limit=100)
    assert _shown(shown) == _expected(_visible(cast, history))
    for s in shown:  # the sample row is one of the signature's own, on a visible account
        sample = StoppedTask.objects.filter(signature=s.key).first()
        assert (s.family, s.container, s.text) == (sample.family, sample.signature_container, sample.signature_text)


def test_the_signatures_follow_inserts_and_deletes(cast, history):
    filters = StoppedFilters(range="all")
    before = _shown(signatures_of(stopped_tasks_for_user(user=cast.viewer, filters=filters), limit=100))
    added = [row(cast.prod, service="batch", family="web", minutes_ago=3, containers=(("app", 1, ""),))]
    assert stopped_prune(days=1) > 0  # retention: the rows older than a day go
    rows = [r for r in StoppedTask.objects.all() if r.pk in {h.pk for h in history}] + added
    after = _shown(signatures_of(stopped_tasks_for_user(user=cast.viewer, filters=filters), limit=100))
    assert after != before
    assert after == _expected(_visible(cast, rows, hours=None))
    assert "batch" in next(s[4] for s in after if s[0] == added[0].signature)


def test_the_home_page_failures_leave_routine_stops_out(cast, history):
    qs = stopped_tasks_for_user(user=cast.viewer, filters=StoppedFilters())
    failures = failures_of(qs, limit=100)
    expected = [s for s in _expected(_visible(cast, history)) if not categories.category(s[5]).is_routine]
    assert failures and _shown(failures) == expected


def test_the_chart_counts_every_visible_row_of_the_window_once(cast, history):
    now = timezone.now()
    qs = stopped_tasks_for_user(user=cast.viewer, filters=StoppedFilters(), now=now, with_range=False)
    chart = chart_of(qs, window="24h", now=now)
    since_hour = int(now.timestamp() // 3600) - 24
    expected = [r for r in _visible(cast, history, hours=25) if r.stopped_hour > since_hour]
    assert chart.total == len(expected) > 0


def test_the_page_s_queries_do_not_grow_with_rows_signatures_or_services(cast, login):
    client = login(cast.viewer)
    row(cast.prod)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/stopped/").status_code == 200
    for n in range(30):
        stop_code, reason, containers = KINDS[n % len(KINDS)]
        row(cast.prod, service=f"svc-{n}", family=f"fam-{n % 5}", cluster=f"c{n % 6}",
            stop_code=stop_code, reason=reason, containers=containers)  # fmt: skip
    with CaptureQueriesContext(connection) as many:
        assert client.get("/stopped/").status_code == 200
    assert len(many) == len(few)


def _plan(sql: str) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql)
            return " ".join(str(r[-1]) for r in cursor.fetchall())
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: ask whether an index can serve
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + sql)
        return " ".join(r[0] for r in cursor.fetchall())


@pytest.mark.parametrize("part", ["signatures", "chart"])
def test_the_aggregates_read_the_covering_index_alone(cast, history, part):
    """Every column the GROUP BYs read is in `stopped_account_covering`: no table access."""
    now = timezone.now()
    qs = stopped_tasks_for_user(user=cast.viewer, filters=StoppedFilters(), now=now, with_range=part != "chart")
    caught = CaptureQueriesContext(connection)
    with caught:
        if part == "signatures":
            signatures_of(qs)
        else:
            chart_of(qs, window="24h", now=now)
    grouped = next(q["sql"] for q in caught.captured_queries if "GROUP BY" in q["sql"])
    plan = _plan(grouped)  # the statement as sent, its values inlined by the backend's own quoting
    assert (
        "COVERING INDEX stopped_account_covering" in plan or "Index Only Scan using stopped_account_covering" in plan
    ), plan


def test_the_rows_built_in_python_escape_aws_text_and_link_as_before(cast, login):
    """The table's rows are built by the `stopped_rows` tag, not the template engine: every
    value is still escaped, and each row links to its detail and to its filters."""
    hostile = row(
        cast.prod,
        cluster="prod-web",
        service="web&api",
        reason='<script>alert("x")</script>',
        containers=(("app<1>", 1, "<img src=x onerror=alert(1)>"),),
    )
    html = login(cast.viewer).get("/stopped/").content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "app&lt;1&gt;" in html
    assert f'href="/stopped/{hostile.pk}/" class="task-link"' in html
    assert 'class="filter-link" href="?cluster=prod-web"' in html
    assert 'class="filter-link" href="?service=web%26api"' in html
    assert f'class="filter-link" href="?category={hostile.category}"' in html
