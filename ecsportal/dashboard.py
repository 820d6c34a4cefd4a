"""Reads for the home page: what the person paged at 3 a.m. needs first.

Each panel asks the owning app's selector, so the accounts gate decides every row exactly as
on that app's own page: nothing here sees an account the user is not a member of.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from ecsportal.accounts.models import Role
from ecsportal.accounts.selectors import accounts_for_user
from ecsportal.approvals.models import ApprovalRequest, Status
from ecsportal.approvals.selectors import inbox_for_user, requests_for_user, user_is_approver_anywhere
from ecsportal.runs.models import Run
from ecsportal.runs.selectors import LiveShell, live_shells_for_user, runs_for_user
from ecsportal.stopped.aggregates import Signature, failures_of
from ecsportal.stopped.forms import StoppedFilters
from ecsportal.stopped.models import ClusterCollection
from ecsportal.stopped.selectors import stopped_tasks_for_user
from ecsportal.stopped.status import collection_status_for_user

PANELS = ("failures", "approvals", "runs", "clusters", "shells")
FAILURES_SHOWN = 5
REQUESTS_SHOWN = 8
RUNS_SHOWN = 8


@dataclass(frozen=True)
class Failure:
    signature: Signature
    query: str  # the stopped-task table filtered to this signature and window


@dataclass(frozen=True)
class FailuresPanel:
    last_hour: list[Failure]
    last_day: list[Failure]
    has_accounts: bool


def _failures(user: AbstractBaseUser, window: str, now: datetime) -> list[Failure]:
    rows = stopped_tasks_for_user(user=user, filters=StoppedFilters(range=window), now=now)
    return [
        Failure(signature=s, query=StoppedFilters(signature=s.key, range=window).query())
        for s in failures_of(rows, limit=FAILURES_SHOWN)
    ]


def failures_panel_for_user(*, user: AbstractBaseUser, now: datetime | None = None) -> FailuresPanel:
    """The most frequent failure signatures of the last hour and of the last 24 hours."""
    now = now or timezone.now()
    return FailuresPanel(
        last_hour=_failures(user, "1h", now),
        last_day=_failures(user, "24h", now),
        has_accounts=accounts_for_user(user=user).exists(),
    )


@dataclass(frozen=True)
class ApprovalsPanel:
    waiting: list[ApprovalRequest]  # for this user's decision
    waiting_total: int
    mine: list[ApprovalRequest]  # this user's own requests still pending
    is_approver: bool
    can_request: bool  # operator or above somewhere: may ask for stops and commands


def approvals_panel_for_user(*, user: AbstractBaseUser) -> ApprovalsPanel:
    waiting, _ = inbox_for_user(user=user)
    mine = requests_for_user(user=user, status=Status.PENDING, mine=True)[:REQUESTS_SHOWN]
    return ApprovalsPanel(
        waiting=waiting[:REQUESTS_SHOWN],
        waiting_total=len(waiting),
        mine=list(mine),
        is_approver=user_is_approver_anywhere(user=user),
        can_request=accounts_for_user(user=user, min_role=Role.OPERATOR).exists(),
    )


@dataclass(frozen=True)
class RunRow:
    run: Run
    url: str


def _run_url(run: Run) -> str:
    try:
        return reverse("runs:detail", args=[run.pk])
    except NoReverseMatch:  # until the runs pages land, their agreed address
        return f"/runs/{run.pk}/"


def recent_runs_for_user(*, user: AbstractBaseUser) -> list[RunRow]:
    """The latest command runs on the user's accounts (anyone's: on-call wants to see what ran)."""
    return [RunRow(run=r, url=_run_url(r)) for r in runs_for_user(user=user).order_by("-created_at")[:RUNS_SHOWN]]


def shells_for_user(*, user: AbstractBaseUser) -> list[LiveShell]:
    """Live interactive shells on the user's accounts, with who is in each."""
    return live_shells_for_user(user=user)


@dataclass(frozen=True)
class ClustersPanel:
    failed: list[ClusterCollection]  # clusters (or regions) whose last collection failed
    collected: int  # clusters collected at least once


def failed_clusters_for_user(*, user: AbstractBaseUser) -> ClustersPanel:
    status = collection_status_for_user(user=user)
    return ClustersPanel(failed=status.errors, collected=len(status.clusters))
