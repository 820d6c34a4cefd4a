from __future__ import annotations

from django import forms

from ecsportal.approvals.models import Decision, Status
from ecsportal.ui.forms import IdField
from ecsportal.ui.validators import validate_no_bidi_controls


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=Decision.choices)
    comment = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        validators=[validate_no_bidi_controls],
    )


class RequestFilterForm(forms.Form):
    """The request list's filters; see `ui.forms.valid_filters` for how bad values are dropped."""

    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *Status.choices, ("break_glass", "Break-glass")]
    )
    account = IdField()
    mine = forms.BooleanField(required=False)
