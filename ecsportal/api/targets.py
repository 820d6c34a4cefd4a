"""From what a script knows (account name, cluster, service) to the exact target a run needs.

The pages pick every field from menus; a script names an account and a service and expects
the portal to find a ready task. This resolves through the same gate and inventory reads as
the picker, then `run_request` checks the target again as for any run.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.http import Http404

from ecsportal.accounts.models import AwsAccount, Role
from ecsportal.accounts.selectors import account_get_for_user, accounts_for_user
from ecsportal.aws import records
from ecsportal.inventory.selectors import clusters_in_region, task_in_cluster, tasks_in_cluster


@dataclass(frozen=True)
class Target:
    account: AwsAccount
    region: str
    cluster: str
    task: str
    container: str


def account_for_ref(*, user: AbstractBaseUser, ref: str, min_role: Role = Role.VIEWER) -> AwsAccount:
    """An account by portal ID or name, through the gate (404 for one the user may not see)."""
    ref = (ref or "").strip()
    if not ref or any(ord(c) < 32 for c in ref):  # PostgreSQL refuses NUL; no account name has controls
        raise Http404(f"No account {ref!r} among yours; GET /api/v1/accounts lists them.")
    if ref.isdigit():
        return account_get_for_user(user=user, account_pk=int(ref), min_role=min_role)
    found = accounts_for_user(user=user).filter(name=ref).first()
    if found is None:
        raise Http404(f"No account named {ref} among yours; GET /api/v1/accounts lists them.")
    return account_get_for_user(user=user, account_pk=found.pk, min_role=min_role)


def check_region(*, account: AwsAccount, region: str) -> str:
    if region not in (account.regions or []):
        raise ValidationError(f"{region} is not one of {account.name}'s regions ({', '.join(account.regions)}).")
    return region


def region_of_cluster(*, account: AwsAccount, region: str | None, cluster: str) -> str:
    if region:
        return check_region(account=account, region=region)
    short = cluster.rsplit("/", 1)[-1]
    found = [
        r for r in account.regions or [] if any(c.name == short for c in clusters_in_region(account=account, region=r))
    ]
    if len(found) == 1:
        return found[0]
    if not found:
        raise ValidationError(f"No cluster {short} in {account.name}'s regions ({', '.join(account.regions)}).")
    raise ValidationError(f"Cluster {short} exists in several regions ({', '.join(found)}); say which with region.")


def _pick_task(tasks: list[records.Task], *, service: str, cluster: str) -> records.Task:
    mine = [t for t in tasks if t.service_name == service]
    if not mine:
        raise ValidationError(f"Service {service} has no running task in cluster {cluster}.")
    ready = [t for t in mine if t.exec_readiness().ready]
    if not ready:
        raise ValidationError(f"No task of service {service} is ready for ECS Exec: {mine[0].exec_readiness().reason}")
    return sorted(ready, key=lambda t: t.arn)[0]


def resolve_target(
    *,
    user: AbstractBaseUser,
    account: str,
    region: str | None,
    cluster: str,
    service: str | None,
    task: str | None,
    container: str | None,
    min_role: Role = Role.OPERATOR,
) -> Target:
    acct = account_for_ref(user=user, ref=account, min_role=min_role)
    region = region_of_cluster(account=acct, region=region, cluster=cluster)
    if task:
        found = task_in_cluster(account=acct, region=region, cluster=cluster, task_id=task.rsplit("/", 1)[-1])
    elif service:
        found = _pick_task(
            tasks_in_cluster(account=acct, region=region, cluster=cluster), service=service, cluster=cluster
        )
    else:
        raise ValidationError("Name a task, or a service to pick a ready task of.")
    if not container:
        names = [c.name for c in found.containers]
        if len(names) != 1:
            raise ValidationError(
                f"Task {found.id} has several containers ({', '.join(names)}); say which with container."
            )
        container = names[0]
    return Target(account=acct, region=region, cluster=cluster, task=found.id, container=container)
