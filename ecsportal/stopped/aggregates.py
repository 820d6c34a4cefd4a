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
        .annotate(n=Count("id"))
    )
    return chart_build(window=window, counts={(h, c): n for h, c, n in rows}, now=now)
