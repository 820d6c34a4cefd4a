from __future__ import annotations

from django import forms

from ecsportal.ui.forms import IdField

# The browser's datetime-local input first, then the shapes a person pastes.
_WHEN_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]


class AuditFilterForm(forms.Form):
    """The audit page's filters; see `ui.forms.valid_filters` for how bad values are dropped.

    `since` and `until` are in the portal's time zone (DJANGO_TIME_ZONE, UTC by default).
    """

    account = IdField()
    action = forms.CharField(required=False, max_length=100)
    actor = forms.CharField(required=False, max_length=150)
    since = forms.DateTimeField(required=False, input_formats=_WHEN_FORMATS)
    until = forms.DateTimeField(required=False, input_formats=_WHEN_FORMATS)
    q = forms.CharField(required=False, max_length=200)
