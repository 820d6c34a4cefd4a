"""Reads for runs, and the access gate every run view and the run consumer share."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from ecsportal.accounts.models import Role
from ecsportal.accounts.selectors import account_role_for_user, accounts_for_user
from ecsportal.runs.models import Run


def run_get_for_user(*, user: AbstractBaseUser, run_pk: int | str, min_role: Role = Role.VIEWER) -> Run:
    """The run if `user` holds at least `min_role` on its account.

    Viewers may watch and read; running, cancelling and downloading need more (the callers
    say how much). A run on an account the user is not a member of is "not found".
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
    return Run.objects.filter(account__in=accounts_for_user(user=user)).select_related("account", "requested_by")
