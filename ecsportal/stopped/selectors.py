"""Reads of stopped-task history, always through the accounts gate.

`stopped_tasks_for_user` is the one selector behind the page, the signatures, the chart and
both exports, so what a person sees and what they export are the same rows. It takes the
user and keeps only accounts where they hold at least the viewer role.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Count, Max, Min, QuerySet
from django.http import Http404
from django.utils import timezone

from ecsportal.accounts.selectors import accounts_for_user
from ecsportal.stopped import categories
from ecsportal.stopped.chart import Chart, chart_build
from ecsportal.stopped.models import ClusterCollection, CollectionRun, StoppedTask
from ecsportal.ui.forms import MAX_ID

RANGES: dict[str, timedelta | None] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "all": None,
}
RANGE_LABELS = {"1h": "Last hour", "6h": "Last 6 hours", "24h": "Last 24 hours", "7d": "Last 7 days", "all": "All kept"}
SORTS = {
    "stopped_at": ("stopped_at", "id"),
    "account": ("account__name", "-stopped_at", "-id"),
    "cluster": ("cluster", "-stopped_at", "-id"),
    "service": ("service", "-stopped_at", "-id"),
    "task_definition": ("family", "revision", "-stopped_at", "-id"),
    "stop_code": ("stop_code", "-stopped_at", "-id"),
    "category": ("category", "-stopped_at", "-id"),
}
DEFAULT_SORT = "-stopped_at"
PAGE_SIZE = 50
COUNT_CAP = 10_000  # beyond this the page says "10,000+" instead of counting every row
SIGNATURES_SHOWN = 12
STOP_CODES = [
    "EssentialContainerExited",
    "TaskFailedToStart",
    "ServiceSchedulerInitiated",
    "UserInitiated",
    "SpotInterruption",
    "TerminationNotice",
    "InfrastructureHealth",
]


@dataclass(frozen=True)
class StoppedFilters:
    """What the URL asks for; every field has a default, so a bare URL is the on-call view."""

    account: int | None = None
    region: str = ""
    cluster: str = ""
    service: str = ""
    category: str = ""
    stop_code: str = ""
    range: str = "24h"
    q: str = ""
    signature: str = ""
    sort: str = DEFAULT_SORT
    page: int = 1
    chart: str = "24h"

    _DEFAULTS = {"range": "24h", "sort": DEFAULT_SORT, "page": 1, "chart": "24h"}

    def params(self, **changes: Any) -> dict[str, str]:
        values = {**self.__dict__, **changes}
        out: dict[str, str] = {}
        for key, value in values.items():
            if value in (None, "") or self._DEFAULTS.get(key) == value:
                continue
            out[key] = str(value)
        return out

    def query(self, **changes: Any) -> str:
        """The query string for this view with some values changed (links, exports, paging)."""
        return urlencode(self.params(**changes))

    @property
    def is_filtered(self) -> bool:
        return bool(self.params(sort=DEFAULT_SORT, page=1, chart="24h", range="24h"))

    def sort_link(self, column: str) -> str:
        descending = f"-{column}"
        return self.query(sort=column if self.sort == descending else descending, page=1)


def _since(filters: StoppedFilters, now: datetime) -> datetime | None:
    span = RANGES.get(filters.range)
    return now - span if span else None


def stopped_tasks_for_user(
    *, user: AbstractBaseUser, filters: StoppedFilters, now: datetime | None = None, with_range: bool = True
) -> QuerySet[StoppedTask]:
    """The filtered, sorted rows this user may see (viewer or above on the row's account)."""
    account_pks = list(accounts_for_user(user=user).values_list("pk", flat=True))
    qs = StoppedTask.objects.filter(account_id__in=account_pks)
    if filters.account is not None:
        qs = qs.filter(account_id=filters.account)
    for name in ("region", "cluster", "service", "category", "stop_code", "signature"):
        value = getattr(filters, name)
        if value:
            qs = qs.filter(**{name: value})
    if filters.q:
        qs = qs.filter(search_text__contains=filters.q.lower())
    since = _since(filters, now or timezone.now())
    if with_range and since is not None:
        qs = qs.filter(stopped_at__gte=since)
    column = filters.sort.lstrip("-")
    order = SORTS.get(column, SORTS["stopped_at"])
    if filters.sort.startswith("-"):
        order = (f"-{order[0]}", *order[1:]) if column != "stopped_at" else ("-stopped_at", "-id")
    return qs.order_by(*order)


def stopped_task_get_for_user(*, user: AbstractBaseUser, pk: int) -> StoppedTask:
    """One row, or 404 for a missing row and for a row of an account the user may not see."""
    if not 0 < pk <= MAX_ID:
        raise Http404("No such stopped task.")
    account_pks = accounts_for_user(user=user).values_list("pk", flat=True)
    found = StoppedTask.objects.select_related("account").filter(pk=pk, account_id__in=list(account_pks)).first()
    if found is None:
        raise Http404("No such stopped task.")
    return found


@dataclass
class Page:
    rows: list[StoppedTask]
    number: int
    count: int
    capped: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number * PAGE_SIZE < self.count

    @property
    def previous_number(self) -> int:
        return self.number - 1

    @property
    def next_number(self) -> int:
        return self.number + 1

    @property
    def pages(self) -> int | None:
        return None if self.capped else max(1, -(-self.count // PAGE_SIZE))

    @property
    def first_index(self) -> int:
        return (self.number - 1) * PAGE_SIZE + 1 if self.rows else 0

    @property
    def last_index(self) -> int:
        return (self.number - 1) * PAGE_SIZE + len(self.rows)


def page_of(qs: QuerySet[StoppedTask], *, number: int) -> Page:
    count = qs.order_by()[: COUNT_CAP + 1].count()
    capped = count > COUNT_CAP
    last = max(1, -(-min(count, COUNT_CAP) // PAGE_SIZE)) if not capped else number
    number = min(max(1, number), last)
    start = (number - 1) * PAGE_SIZE
    rows = list(qs.select_related("account").defer("search_text")[start : start + PAGE_SIZE])
    return Page(rows=rows, number=number, count=min(count, COUNT_CAP), capped=capped)


@dataclass
class Signature:
    key: str
    category: categories.Category
    family: str
    container: str
    text: str
    count: int
    first_seen: datetime
    last_seen: datetime
    services: list[str] = field(default_factory=list)


def signatures_of(qs: QuerySet[StoppedTask], *, limit: int = SIGNATURES_SHOWN) -> list[Signature]:
    """Failure signatures, failures before routine stops, most frequent first.

    One GROUP BY over (signature, category), which the covering index answers alone, then one
    query for a sample row of each shown signature; distinct signatures are few, so the
    ordering happens here.
    """
    grouped = list(
        qs.order_by()
        .values("signature", "category")
        .annotate(n=Count("id"), first=Min("stopped_at"), last=Max("stopped_at"), sample=Max("id"))
    )
    grouped.sort(key=lambda g: (categories.category(g["category"]).is_routine, -g["n"], -g["last"].timestamp()))
    grouped = grouped[:limit]
    if not grouped:
        return []
    samples = {
        r["signature"]: r
        for r in StoppedTask.objects.filter(pk__in=[g["sample"] for g in grouped]).values(
            "signature", "family", "signature_container", "signature_text"
        )
    }
    found = [
        Signature(
            key=g["signature"],
            category=categories.category(g["category"]),
            family=samples[g["signature"]]["family"],
            container=samples[g["signature"]]["signature_container"],
            text=samples[g["signature"]]["signature_text"],
            count=g["n"],
            first_seen=g["first"],
            last_seen=g["last"],
        )
        for g in grouped
    ]
    services: dict[str, set[str]] = {}
    pairs = qs.order_by().filter(signature__in=[s.key for s in found]).values_list("signature", "service")
    for key, service in pairs.distinct():
        services.setdefault(key, set()).add(service or "(standalone)")
    for s in found:
        s.services = sorted(services.get(s.key, ()))
    return found


def chart_of(qs_without_range: QuerySet[StoppedTask], *, window: str, now: datetime) -> Chart:
    from ecsportal.stopped.chart import WINDOWS

    hours = WINDOWS.get(window, WINDOWS["24h"])[0]
    since_hour = int(now.timestamp() // 3600) - hours
    rows = (
        qs_without_range.order_by()
        .filter(stopped_hour__gt=since_hour, stopped_at__gte=now - timedelta(hours=hours + 1))
        .values_list("stopped_hour", "category")
        .annotate(n=Count("id"))
    )
    return chart_build(window=window, counts={(h, c): n for h, c, n in rows}, now=now)


def stopped_page_for_user(*, user: AbstractBaseUser, filters: StoppedFilters) -> dict[str, Any]:
    """Everything the on-call view shows: signatures, the chart, one page of the table."""
    now = timezone.now()
    qs = stopped_tasks_for_user(user=user, filters=filters, now=now)
    page = page_of(qs, number=filters.page)
    if page.number != filters.page:
        filters = replace(filters, page=page.number)
    chart_qs = stopped_tasks_for_user(user=user, filters=filters, now=now, with_range=False)
    return {
        "filters": filters,
        "page": page,
        "signatures": signatures_of(qs) if not filters.signature else [],
        "chart": chart_of(chart_qs, window=filters.chart, now=now),
    }


@dataclass
class CollectionStatus:
    clusters: list[ClusterCollection]
    active: CollectionRun | None
    last_finished_at: datetime | None
    # A run's totals span its whole scope; show them only to people who may see all of it.
    active_counts_visible: bool = False

    @property
    def errors(self) -> list[ClusterCollection]:
        return [c for c in self.clusters if c.state == ClusterCollection.State.ERROR]

    @property
    def ok_count(self) -> int:
        return sum(1 for c in self.clusters if c.state == ClusterCollection.State.OK)

    @property
    def queued_count(self) -> int:
        return sum(1 for c in self.clusters if c.state == ClusterCollection.State.QUEUED)


# A run that has not finished after this long died with its process; it no longer blocks a new one.
RUN_STALE_AFTER = timedelta(minutes=15)


def collection_run_active() -> CollectionRun | None:
    """The run in progress, if any (runs abandoned by a dead process do not count)."""
    return (
        CollectionRun.objects.filter(finished_at__isnull=True, started_at__gte=timezone.now() - RUN_STALE_AFTER)
        .order_by("-started_at")
        .first()
    )


def collection_status_for_user(*, user: AbstractBaseUser) -> CollectionStatus:
    """Per-cluster collection state for the user's accounts, and the run in progress if any."""
    accounts = accounts_for_user(user=user)
    clusters = list(
        ClusterCollection.objects.filter(account__in=accounts)
        .select_related("account", "run")
        .order_by("account__name", "region", "cluster")
    )
    last = (
        CollectionRun.objects.filter(finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
    ).first()
    active = collection_run_active()
    visible = active is not None and (
        user.is_superuser
        or (bool(active.account_pks) and set(active.account_pks) <= set(accounts.values_list("pk", flat=True)))
    )
    return CollectionStatus(clusters=clusters, active=active, last_finished_at=last, active_counts_visible=visible)


def filter_choices_for_user(*, user: AbstractBaseUser) -> dict[str, Any]:
    """Options of the filter form: the user's accounts, their regions and known clusters."""
    accounts = list(accounts_for_user(user=user).order_by("name"))
    clusters = (
        ClusterCollection.objects.filter(account__in=[a.pk for a in accounts])
        .exclude(cluster="")
        .order_by("cluster")
        .values_list("cluster", flat=True)
        .distinct()
    )
    return {
        "accounts": accounts,
        "regions": sorted({r for a in accounts for r in a.regions}),
        "clusters": list(clusters),
        "categories": sorted(categories.CATEGORIES.values(), key=lambda c: (c.is_routine, c.label)),
        "stop_codes": STOP_CODES,
        "ranges": RANGE_LABELS,
    }
