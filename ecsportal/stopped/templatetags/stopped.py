from __future__ import annotations

from collections.abc import Iterable

from django import template
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from ecsportal.stopped import categories
from ecsportal.stopped.chart import Chart
from ecsportal.stopped.models import StoppedTask
from ecsportal.ui.templatetags.portal import when

register = template.Library()


@register.simple_tag
def category_badge(category_id: str) -> str:
    """The category as a coloured badge; its meaning on hover."""
    c = categories.category(category_id)
    return format_html('<span class="badge badge-cat cat-{}" title="{}">{}</span>', c.id, c.meaning, c.label)


@register.simple_tag
def exit_code(code: int | None) -> str:
    """An exit code with what it means on hover; colour only for the ones that signal trouble."""
    meaning = categories.exit_code_meaning(code)
    if code is None:
        return format_html('<span class="exit-code exit-none" title="{}">—</span>', meaning)
    tone = "ok" if code in (0, 143) else "bad"
    return format_html('<span class="exit-code exit-{}" title="{}">{}</span>', tone, meaning, code)


@register.simple_tag
def query(filters: object, **changes: object) -> str:
    """The current filters' query string with some values changed: `{% query filters cluster=t.cluster %}`.

    Any filter change starts again at page 1.
    """
    changes.setdefault("page", 1)
    return filters.query(**changes)  # type: ignore[attr-defined]


@register.simple_tag
def sort_header(filters: object, column: str, label: str) -> str:
    """The column's sort link. data-focus-key lets app.js put focus back on it after the table is
    swapped (its href changes with the direction); the arrow is drawn, aria-sort on the <th> says it."""
    current = filters.sort  # type: ignore[attr-defined]
    arrow = " ↓" if current == f"-{column}" else " ↑" if current == column else ""
    return format_html(
        '<a href="?{}" class="sort-link" data-focus-key="sort-{}">{}<span aria-hidden="true">{}</span></a>',
        filters.sort_link(column),  # type: ignore[attr-defined]
        column,
        label,
        arrow,
    )


@register.simple_tag
def aria_sort(filters: object, column: str) -> str:
    """` aria-sort="…"` for the <th> of the column the table is sorted by, else nothing."""
    current = filters.sort  # type: ignore[attr-defined]
    if current not in (column, f"-{column}"):
        return ""
    return format_html(' aria-sort="{}"', "descending" if current.startswith("-") else "ascending")


@register.simple_tag
def chart_svg(chart: Chart) -> str:
    """The chart's SVG, built here rather than in template loops: a 7-day chart has hundreds of
    bars, and every value is escaped by format_html all the same."""
    window = "hour over the last 24 hours" if chart.window == "24h" else "6 hours over the last 7 days"
    parts = [
        format_html(
            '<svg class="stopped-chart" viewBox="0 0 {} {}" role="img" aria-label="{}">',
            chart.width,
            chart.height,
            f"Stopped tasks per {window}, by category; {chart.total} in all",
        )
    ]
    for t in chart.y_ticks:
        parts.append(
            format_html(
                '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
                '<text class="axis" x="{}" y="{}" text-anchor="end" dominant-baseline="middle">{}</text>',
                chart.plot_left,
                chart.plot_right,
                t.position,
                t.position,
                chart.plot_left - 6,
                t.position,
                t.label,
            )  # fmt: skip
        )
    for r in chart.rects:
        parts.append(
            format_html(
                '<rect class="bar cat-{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
                r.category,
                r.x,
                r.y,
                r.width,
                r.height,
                r.title,
            )  # fmt: skip
        )
    for t in chart.x_ticks:
        parts.append(
            format_html(
                '<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>',
                t.position,
                chart.plot_bottom + 15,
                t.label,
            )
        )
    parts.append(mark_safe("</svg>"))  # a literal closing tag
    return mark_safe("".join(parts))  # noqa: S308  (every part above went through format_html)


def _cut(text: str, length: int) -> str:
    """`truncatechars` then `default:"—"`."""
    return Truncator(text).chars(length) if text else "—"


def _filter_link(filters: object, text: str | SafeString, **change: str) -> SafeString:
    return format_html('<a class="filter-link" href="?{}">{}</a>', query(filters, **change), text)


def _containers(task: StoppedTask) -> SafeString:
    parts = []
    for c in task.containers:
        reason = c.get("reason")
        why = (
            format_html(' <span class="text-body-secondary text-wrap-anywhere"><bdi>{}</bdi></span>', _cut(reason, 90))
            if reason
            else ""
        )
        parts.append(
            format_html(
                '\n            <div><span class="fw-medium">{}</span> {}{}</div>',
                c.get("name", ""),
                exit_code(c.get("exit_code")),
                why,
            )
        )
    return mark_safe("".join(parts))  # noqa: S308  (every part above went through format_html)


@register.simple_tag
def stopped_rows(tasks: Iterable[StoppedTask], filters: object) -> str:
    """The table's rows, built here rather than in template loops: 50 rows of ten cells each
    cost the template engine more than every query of the page (see "List pages at scale");
    every value is escaped by format_html all the same."""
    return format_html_join(
        "",
        """
        <tr class="stopped-row" data-task-id="{}">
          <td class="text-nowrap"><a href="{}" class="task-link">{}</a></td>
          <td class="text-nowrap"><bdi>{}</bdi></td>
          <td class="d-none d-xl-table-cell text-nowrap">{}</td>
          <td class="text-nowrap">{}</td>
          <td class="text-nowrap">{}</td>
          <td class="mono">{}</td>
          <td class="d-none d-lg-table-cell small">{}</td>
          <td>{}</td>
          <td class="small text-wrap-anywhere reason-cell" title="{}"><bdi>{}</bdi></td>
          <td class="small containers-cell">{}
          </td>
        </tr>""",
        (
            (
                t.task_id,
                reverse("stopped:detail", args=(t.pk,)),
                when(t.stopped_at),
                t.account.name,
                t.region,
                _filter_link(filters, t.cluster, cluster=t.cluster),
                _filter_link(filters, t.service, service=t.service)
                if t.service
                else mark_safe('<span class="text-body-secondary">—</span>'),
                t.task_definition or "—",
                t.stop_code or "—",
                _filter_link(filters, category_badge(t.category), category=t.category),
                t.stopped_reason,
                _cut(t.stopped_reason, 160),
                _containers(t),
            )
            for t in tasks
        ),
    )
