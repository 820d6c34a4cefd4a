"""The stopped-task page's query-string state: the filter form, and the `StoppedFilters` it yields.

A bad value is dropped, not fatal, so a pasted link with one stale parameter still opens.
`StoppedFilters` also writes the query strings back (links, exports, paging, sorting).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.core.validators import RegexValidator

from ecsportal.stopped import categories
from ecsportal.stopped.chart import WINDOWS
from ecsportal.ui.forms import IdField, valid_filters

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


_NAME = RegexValidator(r"^[A-Za-z0-9_.:/-]{1,255}$", "Not a valid name.")
_SORT_CHOICES = [(s, s) for column in SORTS for s in (column, f"-{column}")]


class StoppedFilterForm(forms.Form):
    # Any number: an account the user may not see yields no rows (the selector's gate), rather
    # than silently falling back to "all accounts" for a pasted link.
    account = IdField()
    region = forms.CharField(required=False, max_length=32, validators=[RegexValidator(r"^[a-z0-9-]+$")])
    cluster = forms.CharField(required=False, max_length=255, validators=[_NAME])
    service = forms.CharField(required=False, max_length=255, validators=[_NAME])
    category = forms.ChoiceField(required=False, choices=[("", "")] + [(c, c) for c in categories.CATEGORIES])
    stop_code = forms.CharField(required=False, max_length=64, validators=[RegexValidator(r"^[A-Za-z]+$")])
    range = forms.ChoiceField(required=False, choices=[(r, r) for r in RANGES])
    q = forms.CharField(required=False, max_length=200, strip=True)
    signature = forms.CharField(required=False, validators=[RegexValidator(r"^[0-9a-f]{40}$")])
    sort = forms.ChoiceField(required=False, choices=_SORT_CHOICES)
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)
    chart = forms.ChoiceField(required=False, choices=[(w, w) for w in WINDOWS])

    def filters(self) -> StoppedFilters:
        return StoppedFilters(**valid_filters(self))


class StatusForm(forms.Form):
    """The status fragment's poll: which run the page is waiting for."""

    run = IdField()
