"""Reads for runbooks, and their two gates: who may run one, and who may manage one.

Running: a runbook is visible to members of any of its accounts and runnable, by an operator
(or more) on an enabled account that is one of them, on clusters and containers that match
its patterns. Managing: portal admins manage every runbook; an account admin manages the
runbooks whose accounts are all accounts they administer, so nobody can change what runs on
an account they do not administer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, QuerySet
from django.http import Http404

from ecsportal.accounts.models import AwsAccount, Role
from ecsportal.accounts.selectors import accounts_for_user, user_is_account_admin_anywhere
from ecsportal.inventory.selectors import picker_for_user
from ecsportal.runbooks.models import Runbook, RunbookOption
from ecsportal.runbooks.rendering import name_matches


@dataclass(frozen=True)
class RunbookEntry:
    runbook: Runbook
    run_accounts: list[AwsAccount]  # where this user may run it (operator+, enabled)

    @property
    def can_run(self) -> bool:
        return bool(self.run_accounts)


def _with_options(runbooks: QuerySet[Runbook]) -> QuerySet[Runbook]:
    return runbooks.prefetch_related(
        Prefetch("options", queryset=RunbookOption.objects.order_by("position", "id")),
        Prefetch("accounts", queryset=AwsAccount.objects.order_by("name")),
    )


def runbooks_for_user(*, user: AbstractBaseUser) -> list[RunbookEntry]:
    """Enabled runbooks on accounts the user is a member of, each with where they may run it."""
    visible = set(accounts_for_user(user=user).values_list("pk", flat=True))
    runnable = set(
        accounts_for_user(user=user, min_role=Role.OPERATOR).filter(is_enabled=True).values_list("pk", flat=True)
    )
    runbooks = _with_options(Runbook.objects.filter(is_enabled=True, accounts__in=visible).distinct())
    return [RunbookEntry(runbook=r, run_accounts=[a for a in r.accounts.all() if a.pk in runnable]) for r in runbooks]


def runbook_get_for_user(
    *, user: AbstractBaseUser, runbook_pk: int | str, min_role: Role = Role.VIEWER
) -> RunbookEntry:
    """The runbook if the user may see it (Http404 otherwise); with OPERATOR, only if they may run it."""
    try:
        pk = int(runbook_pk)
    except (ValueError, TypeError, OverflowError):
        raise Http404("No such runbook.") from None
    entry = next((e for e in runbooks_for_user(user=user) if e.runbook.pk == pk), None)
    if entry is None:
        raise Http404("No such runbook.")
    if min_role >= Role.OPERATOR and not entry.can_run:
        raise PermissionDenied(
            f"Running “{entry.runbook.name}” needs the operator role on one of its accounts "
            f"({', '.join(a.name for a in entry.runbook.accounts.all())}), and the account enabled."
        )
    return entry


def target_allowed(*, runbook: Runbook, cluster: str, container: str) -> str:
    """ "" if the runbook may run on this cluster and container, else why not."""
    if not name_matches(runbook.cluster_pattern, cluster.rsplit("/", 1)[-1]):
        return f"“{runbook.name}” runs only on clusters matching {runbook.cluster_pattern}; {cluster} does not."
    if not name_matches(runbook.container_pattern, container):
        return f"“{runbook.name}” runs only in containers matching {runbook.container_pattern}; {container} does not."
    return ""


def runbook_picker(*, user: AbstractBaseUser, runbook: Runbook, params: dict[str, str]) -> dict[str, Any]:
    """The inventory picker, offering only the runbook's accounts, clusters and containers."""
    allowed = {a.pk for a in runbook.accounts.all()}
    if params.get("account") and not any(str(pk) == params["account"] for pk in allowed):
        params = {}
    context = picker_for_user(user=user, params=params, min_role=Role.OPERATOR)
    context["accounts"] = [a for a in context["accounts"] if a.pk in allowed]
    choices = context["choices"]
    if not choices:
        return context
    choices = dict(choices)
    context["choices"] = choices
    choices["clusters"] = [c for c in choices["clusters"] if name_matches(runbook.cluster_pattern, c.name)]
    if context["cluster"] and not name_matches(runbook.cluster_pattern, context["cluster"]):
        context.update(cluster="", task_id="", container="", readiness=None)
        choices.update(tasks=[], containers=[], task=None)
        return context
    choices["containers"] = [c for c in choices["containers"] if name_matches(runbook.container_pattern, c.name)]
    task = choices["task"]
    if task is not None:
        names = [c.name for c in choices["containers"]]
        container = context["container"] if context["container"] in names else ""
        if not container and len(names) == 1 and not params.get("container"):
            container = names[0]
        context["container"] = container
        context["readiness"] = task.exec_readiness(container) if container else None
    return context


def runbooks_managed_by(*, user: AbstractBaseUser) -> QuerySet[Runbook]:
    """Runbooks the user may edit: all for portal admins; for account admins, those on their accounts only."""
    if not user.is_authenticated or not user.is_active:
        return Runbook.objects.none()
    runbooks = _with_options(Runbook.objects.all())
    if user.is_superuser:
        return runbooks
    admin = accounts_for_user(user=user, min_role=Role.ADMIN)
    others = AwsAccount.objects.exclude(pk__in=admin.values("pk"))
    return runbooks.filter(accounts__in=admin.values("pk")).exclude(accounts__in=others).distinct()


def manageable_accounts(*, user: AbstractBaseUser) -> QuerySet[AwsAccount]:
    return accounts_for_user(user=user, min_role=Role.ADMIN).order_by("name")


def check_may_manage(*, user: AbstractBaseUser) -> None:
    if not user_is_account_admin_anywhere(user=user):
        raise PermissionDenied("Managing runbooks needs the admin role on an account.")


def runbook_get_for_manager(*, user: AbstractBaseUser, runbook_pk: int | str) -> Runbook:
    check_may_manage(user=user)
    try:
        return runbooks_managed_by(user=user).get(pk=int(runbook_pk))
    except (Runbook.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("No such runbook, or it also runs on accounts you do not administer.") from None
