from __future__ import annotations

from django import template
from django.utils.html import format_html

from ecsportal.stopped import categories

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
    current = filters.sort  # type: ignore[attr-defined]
    arrow = " ↓" if current == f"-{column}" else " ↑" if current == column else ""
    return format_html('<a href="?{}" class="sort-link">{}{}</a>', filters.sort_link(column), label, arrow)  # type: ignore[attr-defined]
