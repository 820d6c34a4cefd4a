"""Runbooks: saved commands with typed options, run by operators from the self-service page."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ecsportal.accounts.models import AwsAccount
from ecsportal.runbooks.rendering import MAX_VALUE_LENGTH, Kind, OptionSpec
from ecsportal.runs.models import RunMode


class OptionKind(models.TextChoices):
    TEXT = Kind.TEXT, "Text"
    CHOICE = Kind.CHOICE, "Choice"
    INTEGER = Kind.INTEGER, "Integer"
    BOOLEAN = Kind.BOOLEAN, "Yes/no flag"


class Runbook(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    accounts = models.ManyToManyField(AwsAccount, related_name="runbooks")
    cluster_pattern = models.CharField(
        max_length=500, blank=True, help_text="Glob(s), comma-separated, e.g. prod-*, staging. Empty: any cluster."
    )
    container_pattern = models.CharField(
        max_length=500, blank=True, help_text="Glob(s), comma-separated, e.g. app, web-*. Empty: any container."
    )
    command_template = models.TextField(
        help_text="A shell command with {name} placeholders, each a word of its own, unquoted (the portal quotes "
        "the values). {{ and }} are literal braces."
    )
    mode = models.CharField(max_length=8, choices=RunMode.choices, default=RunMode.SHELL)
    needs_approval = models.BooleanField(
        default=False, help_text="Each run waits for the account's runbook approvals (its policy) before it starts."
    )
    is_enabled = models.BooleanField(default=True, help_text="Disabled runbooks are hidden from operators.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def option_specs(self) -> list[OptionSpec]:
        return [o.spec() for o in self.options.all()]


class RunbookOption(models.Model):
    runbook = models.ForeignKey(Runbook, on_delete=models.CASCADE, related_name="options")
    position = models.PositiveSmallIntegerField(default=0)
    name = models.CharField(max_length=50, help_text="Lowercase, as in the template: {name}.")
    label = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=10, choices=OptionKind.choices, default=OptionKind.TEXT)
    help_text = models.CharField(max_length=300, blank=True)
    required = models.BooleanField(default=True)
    default = models.CharField(max_length=MAX_VALUE_LENGTH, blank=True)
    pattern = models.CharField(
        max_length=500, blank=True, help_text="Text: a regular expression the whole value must match."
    )
    choices = models.JSONField(default=list, blank=True)
    min_value = models.BigIntegerField(null=True, blank=True)
    max_value = models.BigIntegerField(null=True, blank=True)
    flag = models.CharField(max_length=100, blank=True, help_text="Yes/no: the word inserted when on, e.g. --follow.")
    secret = models.BooleanField(default=False, help_text="Text: masked in the stored command, the page and the audit.")

    class Meta:
        ordering = ["runbook", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["runbook", "name"], name="one_option_name_per_runbook")]

    def __str__(self) -> str:
        return f"{self.runbook.name}: {{{self.name}}}"

    def spec(self) -> OptionSpec:
        return OptionSpec(
            name=self.name,
            kind=self.kind,
            label=self.label,
            required=self.required,
            default=self.default,
            pattern=self.pattern,
            choices=tuple(self.choices or ()),
            secret=self.secret,
            flag=self.flag,
            min_value=self.min_value,
            max_value=self.max_value,
        )
