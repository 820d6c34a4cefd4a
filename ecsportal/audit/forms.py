from __future__ import annotations

from django import forms

from ecsportal.ui.forms import IdField


class AuditFilterForm(forms.Form):
    """The audit page's filters; see `ui.forms.valid_filters` for how bad values are dropped."""

    account = IdField()
    action = forms.CharField(required=False, max_length=100)
    actor = forms.CharField(required=False, max_length=150)
    q = forms.CharField(required=False, max_length=200)
