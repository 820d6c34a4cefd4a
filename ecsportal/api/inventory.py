"""Reads: who am I, accounts, clusters, services, tasks (with exec readiness), stopped tasks."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from ecsportal.accounts.selectors import accounts_for_user, roles_by_account_for_user
from ecsportal.api import schemas as s
from ecsportal.api.targets import account_for_ref, check_region, region_of_cluster
from ecsportal.aws import records
from ecsportal.inventory.selectors import clusters_in_region, services_in_cluster, tasks_in_cluster
from ecsportal.stopped.forms import RANGES, SORTS, StoppedFilters
from ecsportal.stopped.selectors import page_of, stopped_task_get_for_user, stopped_tasks_for_user

router = Router(tags=["inventory"])


@router.get("/me", response=s.Me, summary="The token's user, kind, expiry and role per account")
def me(request: HttpRequest):
    token = request.api_token
    roles = roles_by_account_for_user(user=request.user)
    names = dict(accounts_for_user(user=request.user).values_list("pk", "name"))
    return {
        "username": request.user.get_username(),
        "token": token.label,
        "kind": token.kind,
        "expires_at": token.expires_at,
        "roles": {names[pk]: role.label.lower() for pk, role in roles.items() if pk in names},
    }


@router.get("/accounts", response=list[s.AccountOut], summary="The accounts this token reaches")
def accounts(request: HttpRequest):
    roles = roles_by_account_for_user(user=request.user)
    return [
        {
            "id": a.pk,
            "name": a.name,
            "account_id": a.account_id,
            "regions": a.regions or [],
            "enabled": a.is_enabled,
            "production": a.is_production,
            "role": roles[a.pk].label.lower(),
        }
        for a in accounts_for_user(user=request.user).order_by("name")
    ]


class ClusterQuery(Schema):
    region: str | None = s.Region


@router.get("/accounts/{account}/clusters", response=list[s.ClusterOut], summary="Clusters, in one region or all")
def clusters(request: HttpRequest, account: str, q: Query[ClusterQuery]):
    acct = account_for_ref(user=request.user, ref=account)
    regions = [check_region(account=acct, region=q.region)] if q.region else list(acct.regions or [])
    return [
        {
            "region": r,
            "name": c.name,
            "arn": c.arn,
            "status": c.status,
            "running_tasks": c.running_tasks,
            "pending_tasks": c.pending_tasks,
            "active_services": c.active_services,
        }
        for r in regions
        for c in clusters_in_region(account=acct, region=r)
    ]


class InClusterQuery(Schema):
    region: str | None = s.Region
    service: str | None = s.OptName


@router.get(
    "/accounts/{account}/clusters/{cluster}/services", response=list[s.ServiceOut], summary="A cluster's services"
)
def services(request: HttpRequest, account: str, cluster: str, q: Query[InClusterQuery]):
    acct = account_for_ref(user=request.user, ref=account)
    region = region_of_cluster(account=acct, region=q.region, cluster=cluster)
    return [
        {
            "name": v.name,
            "arn": v.arn,
            "status": v.status,
            "desired_count": v.desired_count,
            "running_count": v.running_count,
            "pending_count": v.pending_count,
            "launch_type": v.launch_type,
            "task_definition": v.task_definition,
            "exec_enabled": v.enable_execute_command,
        }
        for v in services_in_cluster(account=acct, region=region, cluster=cluster)
    ]


def task_out(task: records.Task) -> dict:
    readiness = task.exec_readiness()
    return {
        "id": task.id,
        "arn": task.arn,
        "cluster": task.cluster_name,
        "service": task.service_name,
        "task_definition": task.task_definition,
        "last_status": task.last_status,
        "launch_type": task.launch_type,
        "started_at": task.started_at,
        "private_ip": task.private_ip,
        "exec_ready": readiness.ready,
        "exec_reason": readiness.reason,
        "containers": [
            {
                "name": c.name,
                "last_status": c.last_status,
                "image": c.image,
                "exec_ready": (r := task.exec_readiness(c.name)).ready,
                "exec_reason": r.reason,
            }
            for c in task.containers
        ],
    }


@router.get(
    "/accounts/{account}/clusters/{cluster}/tasks",
    response=list[s.TaskOut],
    summary="A cluster's running tasks, with containers and exec readiness",
)
def tasks(request: HttpRequest, account: str, cluster: str, q: Query[InClusterQuery]):
    acct = account_for_ref(user=request.user, ref=account)
    region = region_of_cluster(account=acct, region=q.region, cluster=cluster)
    found = tasks_in_cluster(account=acct, region=region, cluster=cluster)
    return [task_out(t) for t in found if not q.service or t.service_name == q.service]


class StoppedQuery(Schema):
    account: int | None = Field(None, ge=1, le=2**53)
    region: str = Field("", max_length=32, pattern=r"^[a-z0-9-]*$")
    cluster: str = Field("", max_length=255, pattern=r"^[A-Za-z0-9_.:/-]*$")
    service: str = Field("", max_length=255, pattern=r"^[A-Za-z0-9_.:/-]*$")
    category: str = Field("", max_length=48, pattern=r"^[a-z_-]*$")
    stop_code: str = Field("", max_length=64, pattern=r"^[A-Za-z]*$")
    range: str = Field("24h", pattern="^(" + "|".join(RANGES) + ")$", description="1h, 6h, 24h, 7d or all")
    q: str = Field("", max_length=200)
    sort: str = Field("-stopped_at", pattern="^-?(" + "|".join(SORTS) + ")$")
    page: int = Field(1, ge=1, le=100_000)


def stopped_out(row) -> dict:
    return {
        "id": row.pk,
        "account": row.account.name,
        "region": row.region,
        "cluster": row.cluster,
        "service": row.service,
        "task_arn": row.task_arn,
        "task_definition": row.task_definition_arn.rsplit("/", 1)[-1],
        "stop_code": row.stop_code,
        "stopped_reason": row.stopped_reason,
        "category": row.category,
        "started_at": row.started_at,
        "stopped_at": row.stopped_at,
        "containers": [
            {"name": str(c.get("name", "")), "exit_code": c.get("exit_code"), "reason": str(c.get("reason", "") or "")}
            for c in (row.containers or [])
            if isinstance(c, dict)
        ],
    }


@router.get("/stopped", response=s.StoppedPageOut, summary="Stopped tasks, with the stopped-task page's filters, paged")
def stopped(request: HttpRequest, q: Query[StoppedQuery]):
    filters = StoppedFilters(**{k: v for k, v in q.dict().items()})
    page = page_of(stopped_tasks_for_user(user=request.user, filters=filters), number=q.page)
    return {
        "count": page.paginator.count,
        "page": page.number,
        "pages": page.paginator.num_pages,
        "items": [stopped_out(r) for r in page.object_list],
    }


@router.get("/stopped/{stopped_id}", response=s.StoppedOut, summary="One stopped task")
def stopped_one(request: HttpRequest, stopped_id: int):
    return stopped_out(stopped_task_get_for_user(user=request.user, pk=stopped_id))
