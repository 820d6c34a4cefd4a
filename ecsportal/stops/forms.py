from __future__ import annotations

from typing import Any

from django import forms

from ecsportal.approvals.forms import GatedTargetForm
from ecsportal.stops.selectors import stop_target_for_user
from ecsportal.ui.validators import validate_no_bidi_controls


class StopTaskForm(GatedTargetForm):
    """The task (picker fields, or a pasted ARN), the role to use, and why. Resolved to a running task."""

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
    resolve_after = ("account", "task_arn")
    field_order = [
        "account",
        "region",
        "cluster",
        "task",
        "task_arn",
        "role_arn",
        "reason",
        "break_glass",
        "break_glass_reason",
    ]  # the page's order, and its errors'

    def resolve_target(self, data: dict[str, Any]) -> Any:
        return stop_target_for_user(
            user=self.user,
            account_pk=data.get("account"),
            region=self.text(data, "region"),
            cluster=self.text(data, "cluster"),
            task=self.text(data, "task"),
            task_arn=self.text(data, "task_arn"),
            role_arn=self.text(data, "role_arn"),
        )
