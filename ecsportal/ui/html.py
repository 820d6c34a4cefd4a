"""Table rows built in Python for the long list pages (see "List pages at scale").

`format_html` escapes through `conditional_escape`, whose lazy-string wrappers cost more than
the escaping itself; a page of 50 rows of ten cells called it about a thousand times. `esc`
gives the same text (`html.escape`, quotes included, as `django.utils.html.escape`) and lets
safe strings through as they are, as `conditional_escape` does; `row_html` fills a template
string whose every `{}` is escaped that way.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from html import escape
from typing import Any

from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe


def esc(value: Any) -> str:
    """The value as HTML text: a safe string (`__html__`) as it is, anything else escaped."""
    html = getattr(value, "__html__", None)
    if html is not None:
        return html()
    return escape(str(value))


def row_html(template: str, *values: Any) -> SafeString:
    """`template` with every `{}` filled by the escaped value: format_html without the wrappers."""
    return mark_safe(template.format(*[esc(v) for v in values]))  # noqa: S308  (every value escaped)


def join_safe(parts: list[str]) -> SafeString:
    """Parts each built by `row_html` (or otherwise safe), as one safe string."""
    return mark_safe("".join(parts))  # noqa: S308  (every part was escaped where it was built)


def pk_url(name: str) -> Callable[[int], str]:
    """A URL maker for a route taking one `<int:pk>`: reversed once per page, not once per row."""
    sample = reverse(name, args=(0,))
    head, tail = sample.rsplit("/0/", 1)
    return lambda pk: f"{head}/{int(pk)}/{tail}"


class Memo:
    """A function's results kept for one page: a table repeats its clusters, categories and
    exit codes row after row."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.found: dict[Hashable, Any] = {}

    def __call__(self, *key: Hashable) -> Any:
        try:
            return self.found[key]
        except KeyError:
            value = self.found[key] = self.function(*key)
            return value
