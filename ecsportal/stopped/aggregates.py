"""What the on-call page sums up from the rows `selectors.stopped_tasks_for_user` gives it:
failure signatures and the chart. Each is a GROUP BY the covering index answers alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Max, Min, QuerySet

from ecsportal.stopped import categories
from ecsportal.stopped.chart import WINDOWS, Chart, chart_build
from ecsportal.stopped.models import StoppedTask

SIGNATURES_SHOWN = 12


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
    sums: dict[tuple[str, str], dict] = {}
    grouped = (
        qs.order_by()
        .values_list("signature", "category", "service")
        .annotate(n=Count("*"), first=Min("stopped_at"), last=Max("stopped_at"), sample=Max("id"))
    )
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


def chart_of(qs_without_range: QuerySet[StoppedTask], *, window: str, now: datetime) -> Chart:
    hours = WINDOWS.get(window, WINDOWS["24h"])[0]
    since_hour = int(now.timestamp() // 3600) - hours
    rows = (
        qs_without_range.order_by()
        .filter(stopped_hour__gt=since_hour, stopped_at__gte=now - timedelta(hours=hours + 1))
        .values_list("stopped_hour", "category")
        .annotate(n=Count("*"))
    )
    return chart_build(window=window, counts={(h, c): n for h, c, n in rows}, now=now)
