"""The filter form: query parameters in, a `StoppedFilters` out. A bad value is dropped, not fatal,
so a pasted link with one stale parameter still opens."""

from __future__ import annotations

from django import forms
from django.core.validators import RegexValidator

from ecsportal.stopped import categories
from ecsportal.stopped.chart import WINDOWS
from ecsportal.stopped.selectors import RANGES, SORTS, StoppedFilters
from ecsportal.ui.forms import IdField, valid_filters

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
