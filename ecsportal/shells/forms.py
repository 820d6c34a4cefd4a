from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError

from ecsportal.shells.models import GrantScope
from ecsportal.shells.selectors import grant_max_minutes, shell_target_for_user
from ecsportal.ui.validators import validate_no_bidi_controls


class ShellAccessRequestForm(forms.Form):
    """The container (from the task page), how wide and how long, and why. Resolved to a running task."""

    account = forms.IntegerField(required=False)
    region = forms.CharField(required=False, max_length=32)
    cluster = forms.CharField(required=False, max_length=255)
    task = forms.CharField(required=False, max_length=64)
    container = forms.CharField(required=False, max_length=255, label="Container")
    scope = forms.ChoiceField(choices=GrantScope.choices, initial=GrantScope.CONTAINER, label="Access to")
    minutes = forms.IntegerField(
        label="For how many minutes",
        initial=30,
        min_value=1,
        error_messages={"required": "Say for how many minutes you need the shell."},
    )
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown to approvers and kept in the audit trail.",
        error_messages={"required": "Say why you need a shell here."},
        validators=[validate_no_bidi_controls],
    )
    break_glass = forms.BooleanField(required=False, label="Break-glass: give me access now without approval")
    break_glass_reason = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Why approval cannot wait",
        validators=[validate_no_bidi_controls],
    )

    def __init__(self, *args: Any, user: AbstractBaseUser, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)
        self.fields["minutes"].max_value = grant_max_minutes()
        self.fields["minutes"].validators[-1:] = []  # replaced by clean_minutes' message
        self.fields["minutes"].help_text = f"1 to {grant_max_minutes()}; the grant starts when it is approved."

    def clean_minutes(self) -> int:
        minutes = self.cleaned_data["minutes"]
        if minutes > grant_max_minutes():
            raise ValidationError(f"At most {grant_max_minutes()} minutes; ask again later if you need more.")
        return minutes

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("break_glass") and not (data.get("break_glass_reason") or "").strip():
            self.add_error("break_glass_reason", "Break-glass needs a written reason for skipping approval.")
        if self.has_error("account") or self.has_error("scope"):
            return data
        try:
            data["target"] = shell_target_for_user(
                user=self.user,
                account_pk=data.get("account"),
                region=(data.get("region") or "").strip(),
                cluster=(data.get("cluster") or "").strip(),
                task=(data.get("task") or "").strip(),
                container=(data.get("container") or "").strip(),
                scope=data.get("scope") or GrantScope.CONTAINER,
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    self.add_error(field if field in self.fields else None, errors)
            else:
                self.add_error(None, exc)
        return data
