"""The account's approval policy, in one place."""

from __future__ import annotations

from datetime import timedelta

from ecsportal.accounts.models import AwsAccount


def approvals_required(*, account: AwsAccount, policy: str) -> int:
    if policy == "stop":
        return account.approvals_for_stop
    if policy == "command":
        if account.approvals_for_commands is None:
            return 1 if account.is_production else 0
        return account.approvals_for_commands
    if policy == "runbook":
        return account.approvals_for_runbooks
    raise ValueError(f"unknown approval policy {policy!r}")


def time_to_live(*, account: AwsAccount) -> timedelta:
    return timedelta(minutes=account.approval_ttl_minutes or 60)
