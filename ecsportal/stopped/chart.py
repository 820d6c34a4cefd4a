"""Stacked bars of stopped tasks per time bucket and category, as SVG geometry.

Drawn on the server: no JavaScript, nothing for the Content Security Policy to block, and it
prints. Colours come from CSS classes (`cat-<id>` in app.css), never from inline styles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ecsportal.stopped import categories

WINDOWS = {"24h": (24, 1), "7d": (168, 6)}  # window → (hours shown, hours per bar)
WIDTH, HEIGHT = 1100, 170
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 10, 24


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    category: str
    title: str


@dataclass(frozen=True)
class Row:
    """One bar as a row of the chart's table alternative: counts in the legend's order."""

    span: str
    counts: tuple[int, ...]
    total: int


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass
class Chart:
    window: str
    total: int = 0
    rects: list[Rect] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    legend: list[tuple[categories.Category, int]] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)  # the bars that are not empty, for people who cannot see them
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    plot_bottom: int = HEIGHT - BOTTOM


def _nice_max(value: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000):
        if value <= step * 4:
            top = -(-value // step) * step if value else 4
            return top + top % 2  # even, so the middle grid line is a whole number
    return value


def chart_build(*, window: str, counts: dict[tuple[int, str], int], now: datetime) -> Chart:
    """`counts` maps (hours since the epoch, category id) → tasks stopped in that hour, or in
    the bar that hour begins (`aggregates.chart_of` sums each bar's hours in the database)."""
    hours, per_bar = WINDOWS.get(window, WINDOWS["24h"])
    bars = hours // per_bar
    now_hour = int(now.timestamp() // 3600)
    last_bucket = now_hour - now_hour % per_bar
    first_bucket = last_bucket - (bars - 1) * per_bar
    buckets: list[dict[str, int]] = [{} for _ in range(bars)]
    totals_by_category: dict[str, int] = {}
    for (hour, category_id), n in counts.items():
        index = (hour - first_bucket) // per_bar
        if 0 <= index < bars:
            buckets[index][category_id] = buckets[index].get(category_id, 0) + n
            totals_by_category[category_id] = totals_by_category.get(category_id, 0) + n
    order = sorted(totals_by_category, key=lambda c: (-totals_by_category[c], c))
    chart = Chart(window=window, total=sum(totals_by_category.values()))
    chart.legend = [(categories.category(c), totals_by_category[c]) for c in order]
    top = _nice_max(max((sum(b.values()) for b in buckets), default=0))
    plot_w, plot_h = chart.plot_right - LEFT, chart.plot_bottom - TOP
    slot = plot_w / bars
    bar_w = max(slot * 0.78, 1.0)
    for index, bucket in enumerate(buckets):
        start = datetime.fromtimestamp((first_bucket + index * per_bar) * 3600, tz=UTC)
        span = f"{start:%a %d %b %H:%M}–{start + timedelta(hours=per_bar):%H:%M} UTC"
        if bucket:
            chart.rows.append(Row(span, tuple(bucket.get(c, 0) for c in order), sum(bucket.values())))
        x = LEFT + index * slot + (slot - bar_w) / 2
        y = float(chart.plot_bottom)
        for category_id in order:
            n = bucket.get(category_id, 0)
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            label = categories.category(category_id).label
            chart.rects.append(Rect(round(x, 1), round(y, 1), round(bar_w, 1), round(h, 1), category_id,
                                    f"{span}: {n} × {label}"))  # fmt: skip
        if window == "24h" and start.hour % 6 == 0:
            chart.x_ticks.append(Tick(round(x + bar_w / 2, 1), f"{start:%H:%M}"))
        elif window != "24h" and start.hour == 0:
            chart.x_ticks.append(Tick(round(x + bar_w / 2, 1), f"{start:%a %d}"))
    chart.y_ticks = [Tick(round(chart.plot_bottom - plot_h * v / top, 1), str(v)) for v in (0, top // 2, top)]
    return chart
