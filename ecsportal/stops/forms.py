from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError

from ecsportal.stops.selectors import stop_target_for_user
from ecsportal.ui.validators import validate_no_bidi_controls


class StopTaskForm(forms.Form):
    """The task (picker fields, or a pasted ARN), the role to use, and why. Resolved to a running task."""

    account = forms.IntegerField(required=False)
    region = forms.CharField(required=False, max_length=32)
    cluster = forms.CharField(required=False, max_length=255)
    task = forms.CharField(required=False, max_length=64)
    task_arn = forms.CharField(required=False, max_length=2048, label="…or paste a task ARN")
    role_arn = forms.CharField(required=False, max_length=2048, label="Role to use")
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown to approvers and written into the task's stop reason.",
        error_messages={"required": "Say why this task should be stopped."},
        validators=[validate_no_bidi_controls],
    )
    break_glass = forms.BooleanField(required=False, label="Break-glass: stop now without approval")
    break_glass_reason = forms.CharField(
        required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}), validators=[validate_no_bidi_controls]
    )

    def __init__(self, *args: Any, user: AbstractBaseUser, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("break_glass") and not (data.get("break_glass_reason") or "").strip():
            self.add_error("break_glass_reason", "Break-glass needs a written reason for skipping approval.")
        if self.has_error("account") or self.has_error("task_arn"):
            return data
        try:
            data["target"] = stop_target_for_user(
                user=self.user,
                account_pk=data.get("account"),
                region=(data.get("region") or "").strip(),
                cluster=(data.get("cluster") or "").strip(),
                task=(data.get("task") or "").strip(),
                task_arn=(data.get("task_arn") or "").strip(),
                role_arn=(data.get("role_arn") or "").strip(),
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    self.add_error(field if field in self.fields else None, errors)
            else:
                self.add_error(None, exc)
        return data
