"""Reads of the live ECS estate, through the accounts gate, briefly cached.

Every function takes the account the gate returned, never an ID from the request, so nothing
here can be reached for an account the user may not see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache

from ecsportal.accounts.models import AwsAccount, Role
from ecsportal.accounts.selectors import accounts_for_user
from ecsportal.aws import ecs, records
from ecsportal.aws.errors import AwsError

T = TypeVar("T")


def _generation(account: AwsAccount) -> int:
    return cache.get(f"inv-gen:{account.pk}", 0)


def _cached(account: AwsAccount, parts: tuple[str, ...], load: Callable[[], T]) -> T:
    """Cache a successful answer for a few seconds; errors are never cached.

    The key carries the account's last change and a refresh generation, so editing the account
    or pressing Refresh never serves an old answer.
    """
    stamp = account.updated_at.timestamp() if account.updated_at else 0
    key = "inv:" + ":".join((str(account.pk), str(stamp), str(_generation(account)), *parts))
    found = cache.get(key)
    if found is not None:
        return found
    value = load()
    cache.set(key, value, settings.INVENTORY_CACHE_SECONDS)
    return value


def inventory_refresh(*, account: AwsAccount) -> None:
    """Forget cached answers for one account (the Refresh button, or after stopping a task)."""
    key = f"inv-gen:{account.pk}"
    cache.add(key, 0, None)
    cache.incr(key)


def clusters_in_region(*, account: AwsAccount, region: str) -> list[records.Cluster]:
    return _cached(account, ("clusters", region), lambda: ecs.list_clusters(account.aws_config(), region))


def services_in_cluster(*, account: AwsAccount, region: str, cluster: str) -> list[records.Service]:
    return _cached(
        account, ("services", region, cluster), lambda: ecs.list_services(account.aws_config(), region, cluster)
    )


def tasks_in_cluster(*, account: AwsAccount, region: str, cluster: str) -> list[records.Task]:
    return _cached(
        account, ("tasks", region, cluster), lambda: ecs.running_tasks(account.aws_config(), region, cluster)
    )


def task_in_cluster(*, account: AwsAccount, region: str, cluster: str, task_id: str) -> records.Task:
    for task in tasks_in_cluster(account=account, region=region, cluster=cluster):
        if task.id == task_id or task.arn == task_id:
            return task
    return ecs.describe_task(account.aws_config(), region, cluster, task_id)


@dataclass(frozen=True)
class RegionClusters:
    account: AwsAccount
    region: str
    clusters: list[records.Cluster]
    error: AwsError | None


@dataclass(frozen=True)
class ClusterSummary:
    account: AwsAccount
    region: str
    cluster: records.Cluster
    tasks: list[records.Task]
    error: AwsError | None

    @property
    def exec_ready(self) -> int:
        return sum(1 for t in self.tasks if t.exec_readiness().ready)


def overview_for_user(
    *, user: AbstractBaseUser, account: AwsAccount | None = None
) -> tuple[list[RegionClusters], list[ClusterSummary]]:
    """Every cluster the user may see, fetched concurrently across accounts and regions.

    A region or cluster that fails (AccessDenied, throttling, unreachable) carries its error;
    the rest of the overview still loads.
    """
    accounts = [account] if account is not None else list(accounts_for_user(user=user).filter(is_enabled=True))
    pairs = [(a, r) for a in accounts for r in a.regions]
    regions = [
        RegionClusters(account=o.item[0], region=o.item[1], clusters=o.result or [], error=o.error)
        for o in ecs.fan_out(lambda p: clusters_in_region(account=p[0], region=p[1]), pairs)
    ]
    triples = [(rc.account, rc.region, c) for rc in regions for c in rc.clusters]
    summaries = [
        ClusterSummary(account=o.item[0], region=o.item[1], cluster=o.item[2], tasks=o.result or [], error=o.error)
        for o in ecs.fan_out(lambda t: tasks_in_cluster(account=t[0], region=t[1], cluster=t[2].name), triples)
    ]
    return regions, summaries


def group_by_service(tasks: list[records.Task]) -> dict[str, list[records.Task]]:
    groups: dict[str, list[records.Task]] = {}
    for task in tasks:
        groups.setdefault(task.service_name or "(standalone)", []).append(task)
    return groups


def picker_choices(*, account: AwsAccount, region: str = "", cluster: str = "", task: str = "") -> dict[str, Any]:
    """The options of each level of the cascading picker, as far as the choices made allow."""
    out: dict[str, Any] = {
        "regions": list(account.regions),
        "clusters": [],
        "tasks": [],
        "containers": [],
        "task": None,
    }
    if region in account.regions:
        out["clusters"] = clusters_in_region(account=account, region=region)
        if cluster and any(c.name == cluster for c in out["clusters"]):
            out["tasks"] = tasks_in_cluster(account=account, region=region, cluster=cluster)
            chosen = next((t for t in out["tasks"] if t.id == task), None)
            if chosen is not None:
                out["task"] = chosen
                out["containers"] = list(chosen.containers)
    return out


def picker_for_user(*, user: AbstractBaseUser, params: dict[str, str], min_role: Role = Role.VIEWER) -> dict[str, Any]:
    """Everything the cascading picker template needs, from the request's current choices.

    A choice that is not valid for the level above it is dropped, so the picker never shows a
    task of a cluster the user did not pick, nor an account the user may not see.
    """
    accounts = list(accounts_for_user(user=user, min_role=min_role).filter(is_enabled=True).order_by("name"))
    chosen = next((a for a in accounts if str(a.pk) == params.get("account", "")), None)
    context: dict[str, Any] = {
        "accounts": accounts,
        "account": chosen,
        "region": "",
        "cluster": "",
        "task_id": "",
        "container": "",
        "choices": None,
        "error": None,
        "readiness": None,
    }
    if chosen is None:
        return context
    context["region"] = params.get("region", "") if params.get("region", "") in chosen.regions else ""
    try:
        choices = picker_choices(
            account=chosen, region=context["region"], cluster=params.get("cluster", ""), task=params.get("task", "")
        )
    except AwsError as exc:
        context["error"] = exc
        return context
    context["choices"] = choices
    if any(c.name == params.get("cluster") for c in choices["clusters"]):
        context["cluster"] = params["cluster"]
    task = choices["task"]
    if task is not None:
        context["task_id"] = task.id
        container = params.get("container", "")
        if not container and len(task.containers) == 1:
            container = task.containers[0].name
        if task.container(container) is not None:
            context["container"] = container
            context["readiness"] = task.exec_readiness(container)
    return context
