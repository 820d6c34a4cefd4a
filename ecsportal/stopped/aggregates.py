"""What the on-call page sums up from the rows `selectors.stopped_tasks_for_user` gives it:
failure signatures and the chart. Each is a GROUP BY the covering index answers alone, or,
for the whole hours of a window, a GROUP BY over the hourly sums (`StoppedHour`) with the
same answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Count, F, Max, Min, QuerySet, Sum

from ecsportal.stopped import categories
from ecsportal.stopped.chart import WINDOWS, Chart, chart_build
from ecsportal.stopped.models import StoppedHour, StoppedTask

SIGNATURES_SHOWN = 12
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


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

    One GROUP BY over (signature, category, service), which the covering index
    `stopped_account_covering` answers alone (an index-only scan: every column it reads,
    `id` included, is in the index), summed up here per signature with its services; then
    one query for a sample row of each shown signature. Distinct signatures and services are
    few, so the sums and the ordering happen here.
    """
    return _ranked(_row_groups(qs), limit)


def signatures_since(
    rows: QuerySet[StoppedTask], hours: QuerySet[StoppedHour], *, since: datetime | None, limit: int = SIGNATURES_SHOWN
) -> list[Signature]:
    """What `signatures_of(rows.filter(stopped_at__gte=since))` gives, read from the hourly sums
    `hours` (the same filters) for every whole hour from `since` on, and from `rows` for the part
    of an hour before the first of them; `since` None: every hour kept. One statement (a UNION
    ALL of the two GROUP BYs): a week is ~170 hours of sums and at most an hour of rows."""
    if since is None:
        return _ranked(_hour_groups(hours), limit)
    whole = -((EPOCH - since) // HOUR)  # the first hour that starts at or after `since`
    part = rows.filter(stopped_at__gte=since, stopped_at__lt=EPOCH + whole * HOUR)
    return _ranked(_row_groups(part).union(_hour_groups(hours.filter(hour__gte=whole)), all=True), limit)


def _row_groups(qs: QuerySet[StoppedTask]) -> QuerySet:
    return (
        qs.order_by()
        .values_list("signature", "category", "service")
        .annotate(n=Count("*"), first=Min("stopped_at"), last=Max("stopped_at"), top=Max("id"))
    )


def _hour_groups(hours: QuerySet[StoppedHour]) -> QuerySet:
    return (
        hours.order_by()
        .values_list("signature", "category", "service")
        .annotate(n=Sum("tasks"), first=Min("first_at"), last=Max("last_at"), top=Max("sample"))
    )


def _ranked(grouped: QuerySet, limit: int) -> list[Signature]:
    """(signature, category, service, count, first, last, greatest ID) groups summed per
    signature, ranked, and given their sample row's text."""
    sums: dict[tuple[str, str], dict] = {}
    for key, category, service, n, first, last, sample in grouped:
        found = sums.get((key, category))
        if found is None:
            sums[(key, category)] = {"n": n, "first": first, "last": last, "sample": sample, "services": {service}}
            continue
        found["n"] += n
        found["first"] = min(found["first"], first)
        found["last"] = max(found["last"], last)
        found["sample"] = max(found["sample"], sample)
        found["services"].add(service)
    ranked = sorted(
        sums.items(),
        key=lambda item: (categories.category(item[0][1]).is_routine, -item[1]["n"], -item[1]["last"].timestamp()),
    )[:limit]
    if not ranked:
        return []
    samples = {
        r["signature"]: r
        for r in StoppedTask.objects.filter(pk__in=[g["sample"] for _, g in ranked])
        .order_by()
        .values("signature", "family", "signature_container", "signature_text")
    }
    return [
        Signature(
            key=key,
            category=categories.category(category),
            family=samples[key]["family"],
            container=samples[key]["signature_container"],
            text=samples[key]["signature_text"],
            count=g["n"],
            first_seen=g["first"],
            last_seen=g["last"],
            services=sorted(service or "(standalone)" for service in g["services"]),
        )
        for (key, category), g in ranked
    ]


def failures_of(qs: QuerySet[StoppedTask], *, limit: int) -> list[Signature]:
    """Only the signatures that are failures (no deployments, scale-ins or people's stops)."""
    routine = [c.id for c in categories.CATEGORIES.values() if c.is_routine]
    return signatures_of(qs.exclude(category__in=routine), limit=limit)


def chart_of(
    qs_without_range: QuerySet[StoppedTask],
    *,
    window: str,
    now: datetime,
    hours: QuerySet[StoppedHour] | None = None,
) -> Chart:
    """Tasks per bar and category over the window: from the hourly sums `hours` (the same
    filters) when given, the window being whole hours, else from the rows. Grouped by the
    bar's first hour in the database: a week is 28 bars of six hours, 168 groups, not 1,008."""
    span, per_bar = WINDOWS.get(window, WINDOWS["24h"])
    since_hour = int(now.timestamp() // 3600) - span
    if hours is not None:
        bars = (
            hours.order_by()
            .filter(hour__gt=since_hour)
            .annotate(bar=F("hour") - F("hour") % per_bar)
            .values_list("bar", "category")
            .annotate(n=Sum("tasks"))
        )
    else:
        bars = (
            qs_without_range.order_by()
            .filter(stopped_hour__gt=since_hour, stopped_at__gte=now - timedelta(hours=span + 1))
            .annotate(bar=F("stopped_hour") - F("stopped_hour") % per_bar)
            .values_list("bar", "category")
            .annotate(n=Count("*"))
        )
    return chart_build(window=window, counts={(h, c): n for h, c, n in bars}, now=now)
