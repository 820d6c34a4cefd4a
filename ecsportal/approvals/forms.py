from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError

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


class GatedTargetForm(forms.Form):
    """A request for an action on one running task that the approval gate decides (stop a task,
    a shell's access): the task from the picker, why, and break-glass. Subclasses name the
    target's resolver (`resolve_target`, which raises ValidationError keyed by field) and set
    their own words on `reason` and `break_glass`."""

    account = forms.IntegerField(required=False)
    region = forms.CharField(required=False, max_length=32)
    cluster = forms.CharField(required=False, max_length=255)
    task = forms.CharField(required=False, max_length=64)
    reason = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 3}), validators=[validate_no_bidi_controls]
    )
    break_glass = forms.BooleanField(required=False)
    break_glass_reason = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Why approval cannot wait",
        validators=[validate_no_bidi_controls],
    )
    # Fields whose own error makes resolving the target pointless.
    resolve_after: tuple[str, ...] = ("account",)

    def __init__(self, *args: Any, user: AbstractBaseUser, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def resolve_target(self, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("break_glass") and not (data.get("break_glass_reason") or "").strip():
            self.add_error("break_glass_reason", "Break-glass needs a written reason for skipping approval.")
        if any(self.has_error(name) for name in self.resolve_after):
            return data
        try:
            data["target"] = self.resolve_target(data)
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    self.add_error(field if field in self.fields else None, errors)
            else:
                self.add_error(None, exc)
        return data

    def text(self, data: dict[str, Any], name: str) -> str:
        """A picker field's value, stripped ('' when absent)."""
        return (data.get(name) or "").strip()
