from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from ecsportal.stopped import categories
from ecsportal.stopped.aggregates import Signature
from ecsportal.stopped.chart import Chart
from ecsportal.stopped.models import StoppedTask
from ecsportal.ui.html import Memo, esc, join_safe, pk_url, row_html
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


_SVG_OPEN = '<svg class="stopped-chart" viewBox="0 0 {} {}" role="img" aria-label="{}">'
_Y_TICK = (
    '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
    '<text class="axis" x="{}" y="{}" text-anchor="end" dominant-baseline="middle">{}</text>'
)
_BAR = '<rect class="bar cat-{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>'
_X_TICK = '<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>'


@register.simple_tag
def chart_svg(chart: Chart) -> str:
    """The chart's SVG, built here rather than in template loops: a 7-day chart has hundreds of
    bars, and every value is escaped (`ui.html.row_html`) all the same."""
    window = "hour over the last 24 hours" if chart.window == "24h" else "6 hours over the last 7 days"
    label = f"Stopped tasks per {window}, by category; {chart.total} in all"
    parts = [row_html(_SVG_OPEN, chart.width, chart.height, label)]
    left, right, bottom = chart.plot_left, chart.plot_right, chart.plot_bottom
    parts += [
        row_html(_Y_TICK, left, right, t.position, t.position, left - 6, t.position, t.label) for t in chart.y_ticks
    ]
    parts += [row_html(_BAR, r.category, r.x, r.y, r.width, r.height, r.title) for r in chart.rects]
    parts += [row_html(_X_TICK, t.position, bottom + 15, t.label) for t in chart.x_ticks]
    parts.append("</svg>")  # a literal closing tag
    return join_safe(parts)


_CHART_ROW = '\n            <tr><th scope="row" class="fw-normal text-nowrap">{}</th>{}<td class="text-end fw-semibold">{}</td></tr>'
_CHART_CELL = '<td class="text-end">{}</td>'
_CHART_ZERO = '<td class="text-end"><span class="text-body-secondary">0</span></td>'


@register.simple_tag
def chart_table_rows(chart: Chart) -> str:
    """The rows of the chart's table alternative (a period per row, a count per category), built
    here as the SVG is: a 7-day chart's table has a few hundred cells."""
    return join_safe(
        [
            row_html(
                _CHART_ROW,
                row.span,
                join_safe([row_html(_CHART_CELL, n) if n else _CHART_ZERO for n in row.counts]),
                row.total,
            )
            for row in chart.rows
        ]
    )


def _cut(text: str, length: int) -> str:
    """`truncatechars` then `default:"—"` (a text within the length is only NFC-normalised, as
    Truncator would: the shortcut skips its character-by-character walk)."""
    if not text:
        return "—"
    if len(text) <= length:
        return unicodedata.normalize("NFC", text)
    return Truncator(text).chars(length)


def _filter_link(filters: object, text: str | SafeString, **change: str) -> SafeString:
    return format_html('<a class="filter-link" href="?{}">{}</a>', query(filters, **change), text)


_ROW = """
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
        </tr>"""
_CONTAINER = '\n            <div><span class="fw-medium">{}</span> {}{}</div>'
_CONTAINER_REASON = ' <span class="text-body-secondary text-wrap-anywhere"><bdi>{}</bdi></span>'
_NO_SERVICE = mark_safe('<span class="text-body-secondary">—</span>')


@register.simple_tag
def stopped_rows(tasks: Iterable[StoppedTask], filters: object) -> str:
    """The table's rows, built here rather than in template loops: 50 rows of ten cells each
    cost the template engine more than every query of the page (see "List pages at scale").
    Every value is escaped (`ui.html.esc`, as format_html would); what repeats from row to row
    (filter links, badges, exit codes) is built once per page."""
    detail = pk_url("stopped:detail")
    link = Memo(lambda field, value, text: _filter_link(filters, text, **{field: value}))
    badge = Memo(category_badge)
    code = Memo(exit_code)

    def containers(task: StoppedTask) -> str:
        parts = []
        for c in task.containers:
            reason = c.get("reason")
            why = row_html(_CONTAINER_REASON, _cut(reason, 90)) if reason else ""
            parts.append(row_html(_CONTAINER, c.get("name", ""), code(c.get("exit_code")), why))
        return join_safe(parts)

    return join_safe(
        [
            row_html(
                _ROW,
                t.task_id,
                detail(t.pk),
                when(t.stopped_at),
                t.account.name,
                t.region,
                link("cluster", t.cluster, t.cluster),
                link("service", t.service, t.service) if t.service else _NO_SERVICE,
                t.task_definition or "—",
                t.stop_code or "—",
                link("category", t.category, badge(t.category)),
                t.stopped_reason,
                _cut(t.stopped_reason, 160),
                containers(t),
            )
            for t in tasks
        ]
    )


_SIGNATURE = """
            <tr class="signature-row{}">
              <td class="text-end fw-semibold"><a href="{}?{}" class="signature-link" title="Show these tasks">{}<span class="visually-hidden"> stopped task{}: {}, {}{}</span></a></td>
              <td>{}</td>
              <td class="mono">{}{}</td>
              <td class="small text-wrap-anywhere signature-text"><bdi>{}</bdi></td>
              <td class="small">{}</td>
              <td class="text-nowrap">{}</td>
              <td class="text-nowrap d-none d-lg-table-cell">{}</td>
            </tr>"""


@register.simple_tag
def signature_rows(signatures: Iterable[Signature], filters: object) -> str:
    """The failure signatures' rows, built as the table's are (`ui.html.row_html`)."""
    url = reverse("stopped:list")
    rows = []
    for s in signatures:
        container = row_html(" · {}", s.container) if s.container else ""
        rows.append(
            row_html(
                _SIGNATURE,
                " routine" if s.category.is_routine else "",
                url,
                query(filters, signature=s.key),
                s.count,
                "" if s.count == 1 else "s",  # pluralize
                s.category.label,
                s.family or "no task definition",
                container,
                category_badge(s.category.id),
                s.family or "—",
                container,
                _cut(s.text, 140),
                join_safe([", ".join(esc(service) for service in s.services)]),
                when(s.last_seen),
                when(s.first_seen),
            )
        )
    return join_safe(rows)
