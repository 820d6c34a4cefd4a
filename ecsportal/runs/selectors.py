"""Reads for runs, and the access gate every run view and the run consumer share."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet, Sum
from django.db.models.functions import Length
from django.http import Http404
from django.utils import timezone

from ecsportal.accounts.crypto import decrypt
from ecsportal.accounts.models import AwsAccount, Role
from ecsportal.accounts.selectors import account_role_for_user, accounts_for_user
from ecsportal.runs.models import ACTIVE_STATUSES, Run, RunChunk, SessionEvent, SessionSeat
from ecsportal.ui.distinct import distinct_values


def run_get_for_user(*, user: AbstractBaseUser, run_pk: int | str, min_role: Role = Role.VIEWER) -> Run:
    """The run if `user` holds at least `min_role` on its account.

    Viewers may watch and read; running, cancelling and downloading need more (the callers
    say how much). A run on an account the user is not a member of is "not found". Reading
    never writes: a run whose approval closed was ended by the approvals hook already.
    """
    try:
        run = Run.objects.select_related("account", "requested_by", "approval").get(pk=int(run_pk))
    except (Run.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("No such run.") from None
    role = account_role_for_user(user=user, account=run.account)
    if role is None:
        raise Http404("No such run.")
    if role < min_role:
        raise PermissionDenied(
            f"This needs the {min_role.label.lower()} role on {run.account.name}; you are {role.label.lower()}."
        )
    return run


def runs_for_user(*, user: AbstractBaseUser) -> QuerySet[Run]:
    """Every run on the accounts the user may see, newest first."""
    return _runs_of(_account_pks(user))


def _account_pks(user: AbstractBaseUser) -> list[int]:
    # Read first and given as values: the planner then sees how many runs they hold, where a
    # subquery over memberships left it guessing (and sorting them all).
    return list(accounts_for_user(user=user).values_list("pk", flat=True))


def _runs_of(account_pks: list[int]) -> QuerySet[Run]:
    return Run.objects.filter(account_id__in=account_pks).select_related("account", "requested_by")


@dataclass(frozen=True)
class RunFilters:
    """The history's filters, as the query string gave them ("" / None: not filtered)."""

    account: int | None = None
    cluster: str = ""  # a cluster's name: runs picked by name and by ARN both match
    user: str = ""  # a username
    status: str = ""


@dataclass(frozen=True)
class RunChoices:
    """What the history's filter menus offer: only values some visible run has."""

    accounts: list[AwsAccount]
    clusters: list[str]  # names, sorted
    users: list[str]  # usernames, sorted


def runs_filtered_for_user(*, user: AbstractBaseUser, filters: RunFilters) -> QuerySet[Run]:
    account_pks = _account_pks(user)
    if filters.account is not None:
        account_pks = [pk for pk in account_pks if pk == filters.account]
    runs = _runs_of(account_pks)
    if filters.cluster:
        # The exact stored values (index-backed) instead of "= name OR LIKE '%/name'", which no index serves.
        runs = runs.filter(cluster__in=_cluster_spellings(account_pks).get(filters.cluster, []))
    if filters.user:
        runs = runs.filter(requested_by__username=filters.user)
    if filters.status:
        runs = runs.filter(status=filters.status)
    return runs


def run_choices_for_user(*, user: AbstractBaseUser) -> RunChoices:
    accounts = list(accounts_for_user(user=user).order_by("name"))
    account_pks = [a.pk for a in accounts]
    User = get_user_model()
    name = User.USERNAME_FIELD
    users = User.objects.filter(pk__in=distinct_values(Run, "requested_by", within=("account", account_pks))).order_by(
        name
    )
    return RunChoices(
        accounts=accounts,
        clusters=sorted(_cluster_spellings(account_pks)),
        users=list(users.values_list(name, flat=True)[:CHOICES_LIMIT]),
    )


def _cluster_spellings(account_pks: list[int]) -> dict[str, list[str]]:
    """Cluster name → the stored values (the name, ARNs) among these accounts' runs."""
    spellings: dict[str, list[str]] = {}
    # Read by skipping through the (account, cluster) index, never by a DISTINCT over every run.
    for value in distinct_values(Run, "cluster", within=("account", account_pks), limit=CHOICES_LIMIT):
        spellings.setdefault(value.rsplit("/", 1)[-1], []).append(value)
    return spellings


CHOICES_LIMIT = 500  # distinct values read per account for a filter menu


def run_chunks(*, run: Run, after: int = 0, limit: int | None = None) -> list[RunChunk]:
    """The stored transcript chunks with seq > `after`, in order (at most `limit` of them)."""
    chunks = RunChunk.objects.filter(run=run, seq__gt=after).order_by("seq")
    return list(chunks[:limit] if limit is not None else chunks)


def session_events(*, run: Run) -> list[tuple[float, str, str]]:
    """An interactive session's recorded events for its asciicast: (offset, kind, data) in time order."""
    return list(SessionEvent.objects.filter(run=run).order_by("offset", "id").values_list("offset", "kind", "data"))


def run_transcript_bytes(*, run: Run) -> bytes:
    """The whole transcript as the terminal received it (escapes kept, exit marker removed)."""
    return b"".join(
        bytes(data) for data in RunChunk.objects.filter(run=run).order_by("seq").values_list("data", flat=True)
    )


def run_stored_bytes(*, run_pk: int) -> int:
    """The size of the run's stored transcript (its RunChunk rows): the true `bytes_out` of a
    run whose runner is gone, whose last heartbeat may be a round behind."""
    return RunChunk.objects.filter(run_id=run_pk).aggregate(total=Sum(Length("data")))["total"] or 0


def run_real_command(*, run: Run) -> str:
    """The command actually sent: the sealed one (runbook secrets) while it is kept, else the shown one."""
    if run.command_sealed:
        return decrypt(run.command_sealed)
    return run.command


def command_sha256(*, command: str, task_arn: str, container: str) -> str:
    """What an approval for a command binds to: the exact command on the exact task and container."""
    return hashlib.sha256("\0".join((command, task_arn, container)).encode()).hexdigest()


def seat_lease_seconds() -> float:
    return max(1.0, float(settings.ECSPORTAL_SHELL_SEAT_LEASE_SECONDS))


def live_seats() -> QuerySet[SessionSeat]:
    """Seats in shells whose lease still runs: a seat its process stopped renewing (killed
    without a goodbye) counts for nobody, even before a sweep removes it."""
    return SessionSeat.objects.filter(seen_at__gte=timezone.now() - timedelta(seconds=seat_lease_seconds()))


@dataclass(frozen=True)
class LiveShell:
    run: Run
    people: list[str]  # usernames in the session now, in the order they joined


def live_shells_for_user(*, user: AbstractBaseUser, task_arn: str = "", limit: int = 20) -> list[LiveShell]:
    """Live shells on the user's accounts (viewer and up), with who is in each: the home page,
    and (with `task_arn`) a task's page."""
    runs = Run.objects.filter(
        interactive=True, status__in=ACTIVE_STATUSES, account__in=accounts_for_user(user=user)
    ).select_related("account", "requested_by", "keyboard_holder")
    if task_arn:
        runs = runs.filter(task_arn=task_arn)
    found = list(runs[:limit])
    names: dict[int, list[str]] = {run.pk: [] for run in found}
    for seat in live_seats().filter(run_id__in=names).select_related("user").order_by("joined_at", "id"):
        username = seat.user.get_username()
        if username not in names[seat.run_id]:
            names[seat.run_id].append(username)
    return [LiveShell(run=run, people=names[run.pk]) for run in found]
