"""Reads of the live ECS estate, through the accounts gate, briefly cached.

Every function takes the account the gate returned, never an ID from the request, so nothing
here can be reached for an account the user may not see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.core.exceptions import ValidationError

from ecsportal.accounts.models import AwsAccount, Role
from ecsportal.accounts.selectors import account_allows_role_arn, account_get_for_user, accounts_for_user
from ecsportal.aws import ecs, records
from ecsportal.aws.errors import AwsError
from ecsportal.inventory.forms import PickerForm
from ecsportal.ui.forms import valid_filters

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


@dataclass(frozen=True)
class PickerChoices:
    """The options of each level of the cascading picker, as far as the choices made allow."""

    regions: list[str]
    clusters: list[records.Cluster] = field(default_factory=list)
    tasks: list[records.Task] = field(default_factory=list)
    containers: list[records.Container] = field(default_factory=list)
    task: records.Task | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "regions": self.regions,
            "clusters": self.clusters,
            "tasks": self.tasks,
            "containers": self.containers,
            "task": self.task,
        }


def picker_choices(*, account: AwsAccount, region: str = "", cluster: str = "", task: str = "") -> PickerChoices:
    if region not in account.regions:
        return PickerChoices(regions=list(account.regions))
    clusters = clusters_in_region(account=account, region=region)
    if not cluster or not any(c.name == cluster for c in clusters):
        return PickerChoices(regions=list(account.regions), clusters=clusters)
    tasks = tasks_in_cluster(account=account, region=region, cluster=cluster)
    chosen = next((t for t in tasks if t.id == task), None)
    return PickerChoices(
        regions=list(account.regions),
        clusters=clusters,
        tasks=tasks,
        containers=list(chosen.containers) if chosen is not None else [],
        task=chosen,
    )


@dataclass(frozen=True)
class Picker:
    """What the picker shows: each level's choice, kept only when it fits the level above."""

    accounts: list[AwsAccount]
    account: AwsAccount | None = None
    region: str = ""
    cluster: str = ""
    task_id: str = ""
    container: str = ""
    choices: PickerChoices | None = None
    error: AwsError | None = None
    readiness: records.Readiness | None = None

    def as_context(self) -> dict[str, Any]:
        """The context `inventory/_picker.html` reads; forms that embed the picker start from it."""
        return {
            "accounts": self.accounts,
            "account": self.account,
            "region": self.region,
            "cluster": self.cluster,
            "task_id": self.task_id,
            "container": self.container,
            "choices": self.choices.as_dict() if self.choices is not None else None,
            "error": self.error,
            "readiness": self.readiness,
        }


def picker_get_for_user(*, user: AbstractBaseUser, form: PickerForm, min_role: Role = Role.VIEWER) -> Picker:
    """The picker for the form's current choices.

    A choice that is not valid for the level above it is dropped, so the picker never shows a
    task of a cluster the user did not pick, nor an account the user may not see.
    """
    wanted = valid_filters(form)
    accounts = list(accounts_for_user(user=user, min_role=min_role).filter(is_enabled=True).order_by("name"))
    chosen = next((a for a in accounts if a.pk == wanted.get("account")), None)
    if chosen is None:
        return Picker(accounts=accounts)
    region = wanted.get("region", "") if wanted.get("region", "") in chosen.regions else ""
    try:
        choices = picker_choices(
            account=chosen, region=region, cluster=wanted.get("cluster", ""), task=wanted.get("task", "")
        )
    except AwsError as exc:
        return Picker(accounts=accounts, account=chosen, region=region, error=exc)
    cluster = wanted.get("cluster", "") if any(c.name == wanted.get("cluster") for c in choices.clusters) else ""
    task = choices.task
    if task is None:
        return Picker(accounts=accounts, account=chosen, region=region, cluster=cluster, choices=choices)
    container = wanted.get("container", "")
    if not container and len(task.containers) == 1:
        container = task.containers[0].name
    found = task.container(container) is not None
    return Picker(
        accounts=accounts,
        account=chosen,
        region=region,
        cluster=cluster,
        task_id=task.id,
        container=container if found else "",
        choices=choices,
        readiness=task.exec_readiness(container) if found else None,
    )


def picker_for_user(*, user: AbstractBaseUser, params: dict[str, str], min_role: Role = Role.VIEWER) -> dict[str, Any]:
    """The picker's template context from raw query parameters: how forms embed the picker
    (stops, runs, runbooks). Its keys are `Picker.as_context()`'s."""
    return picker_get_for_user(user=user, form=PickerForm(params), min_role=min_role).as_context()


def role_choices(*, account: AwsAccount | None) -> list[tuple[str, str]]:
    """The roles a form may act through on `account`: its own, then those its admins allowed."""
    if account is None:
        return [("", "Account's default role")]
    default = (
        f"Account's default ({account.role_arn})" if account.role_arn else "Account's default (portal credentials)"
    )
    return [("", default), *[(arn, arn) for arn in account.allowed_role_arns or [] if arn != account.role_arn]]


def action_picker_for_user(*, user: AbstractBaseUser, params: dict[str, str], picker_url: str) -> dict[str, Any]:
    """The picker of a form that acts on a task (run a command, stop a task): accounts where the
    user is an operator, and the roles the chosen account allows (`inventory/_role_select.html`)."""
    context = picker_for_user(user=user, params=params, min_role=Role.OPERATOR)
    context.update(
        picker_url=picker_url,
        role_choices=role_choices(account=context["account"]),
        role_arn=params.get("role_arn", ""),
    )
    return context


@dataclass(frozen=True)
class LiveTask:
    """A task the user may act on, as ECS described it a moment ago, and the role that read it."""

    account: AwsAccount
    region: str
    cluster: str
    task: records.Task
    role_arn: str


def live_task_get_for_user(
    *,
    user: AbstractBaseUser,
    account_pk: int,
    region: str,
    cluster: str,
    task: str,
    role_arn: str = "",
    running: bool = True,
) -> LiveTask:
    """The one check before acting on a task (a run, a stop): the accounts gate (operator, enabled
    account), the role override, the region, then ECS itself (DescribeTasks) and the task's status.

    Raises Http404 (not the user's account) or PermissionDenied (too low a role, a disabled
    account) from the gate, and ValidationError saying what to do for the rest. `running`:
    only a RUNNING task will do (a command); otherwise any task not stopped or stopping (a stop).
    """
    account = account_get_for_user(user=user, account_pk=account_pk, min_role=Role.OPERATOR, enabled_only=True)
    if not account_allows_role_arn(account=account, role_arn=role_arn):
        raise ValidationError(f"{account.name}'s admin has not allowed this role ({role_arn}); pick one from the list.")
    if region not in (account.regions or []):
        regions = ", ".join(account.regions or []) or "none"
        raise ValidationError(f"{region or 'No region'} is not one of {account.name}'s regions ({regions}).")
    if not (cluster and task):
        raise ValidationError("Pick a cluster and a task.")
    try:
        found = ecs.describe_tasks(account.aws_config(), region, cluster, [task], role_arn=role_arn or None)
    except AwsError as exc:
        raise ValidationError(f"Could not read the task: {exc}") from None
    current = next((t for t in found if t.arn == task or t.id == task), None)
    if current is None:
        raise ValidationError(f"No task {task} in cluster {cluster} ({region}); it may have stopped over an hour ago.")
    status = (current.last_status or "").lower() or "not running"
    why = ": ".join(x for x in (current.stop_code, current.stopped_reason) if x)
    if current.last_status == "STOPPED" or current.desired_status == "STOPPED":
        state = "already stopped" if current.last_status == "STOPPED" else f"already stopping (now {status})"
        raise ValidationError(f"Task {current.id} is {state}{f' ({why})' if why else ''}; pick a running task.")
    if running and current.last_status != "RUNNING":
        raise ValidationError(f"Task {current.id} is {status}; commands run only in running tasks.")
    return LiveTask(account=account, region=region, cluster=cluster, task=current, role_arn=role_arn)
