from __future__ import annotations

from typing import Any

from django import forms

from ecsportal.runs.models import RunMode, RunStatus
from ecsportal.ui.forms import IdField
from ecsportal.ui.validators import validate_no_bidi_controls

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,255}$"


class RunCommandForm(forms.Form):
    """The target (the picker's fields), the role to use, the command and how to run it.

    Only shapes are checked here; whether the user may run it there, and whether the task is
    still running, is `runs.services.run_request`'s to decide (its refusal becomes a form error).
    """

    account = forms.IntegerField(error_messages={"required": "Choose an account.", "invalid": "Choose an account."})
    region = forms.CharField(max_length=32, error_messages={"required": "Choose a region."})
    cluster = forms.RegexField(
        regex=NAME_PATTERN,
        max_length=255,
        error_messages={"required": "Choose a cluster.", "invalid": "Choose a cluster."},
    )
    task = forms.RegexField(
        regex=NAME_PATTERN, max_length=64, error_messages={"required": "Choose a task.", "invalid": "Choose a task."}
    )
    container = forms.CharField(max_length=255, error_messages={"required": "Choose a container."})
    role_arn = forms.CharField(required=False, max_length=2048, label="Role to use")
    command = forms.CharField(
        max_length=4000,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Type the command to run."},
        validators=[validate_no_bidi_controls],  # a command must read as what it runs
        help_text="Runs under /bin/sh -c, so pipes, ; and $VARS work, and the exit code is recorded.",
    )
    raw = forms.BooleanField(
        required=False,
        label="Raw mode: no shell (for images without /bin/sh)",
        help_text="The command is split into words and run directly; the exit code cannot be known.",
    )
    reason = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        validators=[validate_no_bidi_controls],
        help_text="Shown to approvers when the account asks for approval of commands.",
    )

    def clean_command(self) -> str:
        command = self.cleaned_data["command"]
        if not command.strip():
            raise forms.ValidationError("Type the command to run.")
        if "\x00" in command:
            raise forms.ValidationError("The command cannot contain a NUL character.")
        return command.strip()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["mode"] = RunMode.RAW if data.get("raw") else RunMode.SHELL
        return data


class ShellOpenForm(forms.Form):
    """The picker's fields for a shell (no command: the account's policy names the shell)."""

    account = forms.IntegerField(error_messages={"required": "Choose an account.", "invalid": "Choose an account."})
    region = forms.CharField(max_length=32, error_messages={"required": "Choose a region."})
    cluster = forms.RegexField(
        regex=NAME_PATTERN,
        max_length=255,
        error_messages={"required": "Choose a cluster.", "invalid": "Choose a cluster."},
    )
    task = forms.RegexField(
        regex=NAME_PATTERN, max_length=64, error_messages={"required": "Choose a task.", "invalid": "Choose a task."}
    )
    container = forms.CharField(max_length=255, error_messages={"required": "Choose a container."})
    role_arn = forms.CharField(required=False, max_length=2048)


class RunFilterForm(forms.Form):
    """The history's query string; each bad value is dropped alone (`ui.forms.valid_filters`)."""

    account = IdField()
    cluster = forms.CharField(required=False, max_length=255)
    user = forms.CharField(required=False, max_length=150)
    status = forms.ChoiceField(required=False, choices=RunStatus.choices)
