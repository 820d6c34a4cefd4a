from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError

from ecsportal.approvals.forms import GatedTargetForm
from ecsportal.shells.models import GrantScope
from ecsportal.shells.selectors import grant_max_minutes, shell_target_for_user
from ecsportal.ui.validators import validate_no_bidi_controls


class ShellAccessRequestForm(GatedTargetForm):
    """The container (from the task page), how wide and how long, and why. Resolved to a running task."""

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
    resolve_after = ("account", "scope")
    field_order = [
        "account",
        "region",
        "cluster",
        "task",
        "container",
        "scope",
        "minutes",
        "reason",
        "break_glass",
        "break_glass_reason",
    ]  # the page's order, and its errors'

    def __init__(self, *args: Any, user: AbstractBaseUser, **kwargs: Any) -> None:
        super().__init__(*args, user=user, **kwargs)
        self.fields["minutes"].max_value = grant_max_minutes()
        self.fields["minutes"].validators[-1:] = []  # replaced by clean_minutes' message
        self.fields["minutes"].help_text = f"1 to {grant_max_minutes()}; the grant starts when it is approved."

    def clean_minutes(self) -> int:
        minutes = self.cleaned_data["minutes"]
        if minutes > grant_max_minutes():
            raise ValidationError(f"At most {grant_max_minutes()} minutes; ask again later if you need more.")
        return minutes

    def resolve_target(self, data: dict[str, Any]) -> Any:
        return shell_target_for_user(
            user=self.user,
            account_pk=data.get("account"),
            region=self.text(data, "region"),
            cluster=self.text(data, "cluster"),
            task=self.text(data, "task"),
            container=self.text(data, "container"),
            scope=data.get("scope") or GrantScope.CONTAINER,
        )
