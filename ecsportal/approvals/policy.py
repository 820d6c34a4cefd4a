"""The account's approval policy, in one place."""

from __future__ import annotations

from datetime import timedelta

from django.db import models

from ecsportal.accounts.models import AwsAccount


class Policy(models.TextChoices):
    """Which of the account's approval counts an action uses (actions name it when they register)."""

    STOP = "stop", "Stopping tasks"
    COMMAND = "command", "Running commands"
    RUNBOOK = "runbook", "Running runbooks"
    SHELL = "shell", "Shell access requests"


def approvals_required(*, account: AwsAccount, policy: Policy | str) -> int:
    if policy == Policy.STOP:
        return account.approvals_for_stop
    if policy == Policy.COMMAND:
        if account.approvals_for_commands is None:
            return 1 if account.is_production else 0
        return account.approvals_for_commands
    if policy == Policy.RUNBOOK:
        return account.approvals_for_runbooks
    if policy == Policy.SHELL:
        return account.approvals_for_shell
    raise ValueError(f"unknown approval policy {policy!r}")


def time_to_live(*, account: AwsAccount) -> timedelta:
    return timedelta(minutes=account.approval_ttl_minutes or 60)
