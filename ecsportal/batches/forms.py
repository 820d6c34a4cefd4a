"""The "Run on many" form: the filter, the command (or a runbook's values), the options."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from ecsportal.batches.services import DEFAULT_CONCURRENCY, LAUNCH_TYPES, BatchOptions, BatchSpec

NAME = r"^[A-Za-z0-9_.:/\-]*$"


def _name(label: str, max_length: int = 255) -> forms.RegexField:
    return forms.RegexField(
        regex=NAME,
        required=False,
        max_length=max_length,
        label=label,
        error_messages={"invalid": f"{label}: letters, digits and - _ . : / only."},
    )


class BatchForm(forms.Form):
    accounts = forms.TypedMultipleChoiceField(
        coerce=int, label="Accounts", error_messages={"required": "Pick at least one account."}
    )
    region = _name("Region", 32)
    cluster = _name("Cluster")
    service = _name("Service")
    family = _name("Task definition family")
    revision = forms.IntegerField(required=False, min_value=1, label="Revision")
    container = _name("Container name")
    launch_type = forms.ChoiceField(
        required=False, choices=[("", "Any"), *[(t, t) for t in LAUNCH_TYPES]], label="Launch type"
    )
    command = forms.CharField(required=False, max_length=16_000, label="Command", strip=False)
    raw = forms.BooleanField(required=False, label="Raw mode (no shell; the exit code is not known)")
    concurrency = forms.IntegerField(
        initial=DEFAULT_CONCURRENCY,
        min_value=1,
        label="At a time",
        error_messages={"required": "Say how many at a time."},
    )
    time_limit = forms.IntegerField(required=False, min_value=1, label="Time limit per target (seconds)")
    stop_after = forms.IntegerField(
        required=False, min_value=0, initial=0, label="Stop starting new targets after this many failures"
    )
    reason = forms.CharField(required=False, max_length=500, label="Reason", widget=forms.Textarea(attrs={"rows": 2}))
    targets_sha256 = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args: Any, accounts: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["accounts"].choices = [(a.pk, a.name) for a in accounts]
        most = int(settings.ECSPORTAL_BATCH_MAX_CONCURRENCY)
        self.fields["concurrency"].max_value = most
        self.fields["concurrency"].validators.append(forms.IntegerField(max_value=most).validators[-1])
        self.fields["concurrency"].help_text = f"1 to {most}."
        self.fields[
            "time_limit"
        ].help_text = (
            f"Each target's run ends after this long (default and most: {settings.ECSPORTAL_RUN_TIME_LIMIT_SECONDS} s)."
        )

    def spec(self, *, expect: bool = False) -> BatchSpec:
        d = self.cleaned_data
        return BatchSpec(
            accounts=tuple(d["accounts"]),
            region=d["region"],
            cluster=d["cluster"],
            service=d["service"],
            family=d["family"],
            revision=d["revision"],
            container=d["container"],
            launch_type=d["launch_type"],
            expect_targets_sha256=d["targets_sha256"] if expect else "",
        )

    def options(self) -> BatchOptions:
        d = self.cleaned_data
        return BatchOptions(
            concurrency=d["concurrency"],
            time_limit_seconds=d["time_limit"],
            stop_after_failures=d["stop_after"] or 0,
            raw=d["raw"],
        )
