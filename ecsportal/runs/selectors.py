"""Reads for runs, and the access gate every run view and the run consumer share."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet, Sum
from django.db.models.functions import Length
from django.http import Http404

from ecsportal.accounts.models import Role
from ecsportal.accounts.selectors import account_role_for_user, accounts_for_user
from ecsportal.runs.models import Run, RunChunk, RunStatus


def run_get_for_user(*, user: AbstractBaseUser, run_pk: int | str, min_role: Role = Role.VIEWER) -> Run:
    """The run if `user` holds at least `min_role` on its account.

    Viewers may watch and read; running, cancelling and downloading need more (the callers
    say how much). A run on an account the user is not a member of is "not found". A run
    still awaiting an approval that was rejected, expired or cancelled is ended (CANCELLED,
    with the reason) as it is read.
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
    if run.status == RunStatus.AWAITING_APPROVAL:
        # A rejected, expired or cancelled approval ends the run here, when it is next read.
        from ecsportal.runs.services import run_settle_approval

        run = run_settle_approval(run=run)
    return run


def runs_for_user(*, user: AbstractBaseUser) -> QuerySet[Run]:
    """Every run on the accounts the user may see, newest first."""
    return Run.objects.filter(account__in=accounts_for_user(user=user)).select_related("account", "requested_by")


def run_chunks(*, run: Run, after: int = 0, limit: int | None = None) -> list[RunChunk]:
    """The stored transcript chunks with seq > `after`, in order (at most `limit` of them)."""
    chunks = RunChunk.objects.filter(run=run, seq__gt=after).order_by("seq")
    return list(chunks[:limit] if limit is not None else chunks)


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
        from ecsportal.accounts.crypto import decrypt

        return decrypt(run.command_sealed)
    return run.command


def command_sha256(*, command: str, task_arn: str, container: str) -> str:
    """What an approval for a command binds to: the exact command on the exact task and container."""
    import hashlib

    return hashlib.sha256("\0".join((command, task_arn, container)).encode()).hexdigest()
