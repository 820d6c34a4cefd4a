"""ECS calls as plain functions: every page of every list, DescribeTasks in batches of 100."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ecsportal.aws import records
from ecsportal.aws.errors import AccountMismatch, AwsError, translate
from ecsportal.aws.sessions import AccountConfig, client

DESCRIBE_TASKS_BATCH = 100
DESCRIBE_SERVICES_BATCH = 10
DESCRIBE_CLUSTERS_BATCH = 100

T = TypeVar("T")
R = TypeVar("R")


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _call(fn: Callable[..., dict], operation: str, where: str, **params: Any) -> dict:
    try:
        return fn(**params)
    except Exception as exc:
        raise translate(exc, operation=operation, where=where) from exc


def _paginate(ecs: Any, operation: str, key: str, where: str, **params: Any) -> list[str]:
    out: list[str] = []
    try:
        for page in ecs.get_paginator(operation).paginate(**params):
            out.extend(page.get(key, []))
    except Exception as exc:
        raise translate(exc, operation=_op_name(operation), where=where) from exc
    return out


def _op_name(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def caller_identity(config: AccountConfig, region: str, *, role_arn: str | None = None) -> records.Identity:
    sts = client(config, "sts", region, role_arn=role_arn)
    answer = _call(sts.get_caller_identity, "GetCallerIdentity", "")
    return records.Identity(account_id=answer["Account"], arn=answer["Arn"], user_id=answer["UserId"])


def verified_identity(config: AccountConfig, region: str) -> records.Identity:
    """The caller identity, checked against the account ID the portal was told: made-up IDs on
    one default chain would otherwise all show (and count) the same account's resources."""
    identity = caller_identity(config, region)
    if identity.account_id != config.account_id:
        raise AccountMismatch(declared=config.account_id, reached=identity.account_id)
    return identity


def list_clusters(config: AccountConfig, region: str) -> list[records.Cluster]:
    ecs = client(config, "ecs", region)
    arns = _paginate(ecs, "list_clusters", "clusterArns", region)
    out: list[records.Cluster] = []
    for batch in _chunks(arns, DESCRIBE_CLUSTERS_BATCH):
        answer = _call(ecs.describe_clusters, "DescribeClusters", region, clusters=batch)
        out.extend(_cluster(c) for c in answer.get("clusters", []))
    return sorted(out, key=lambda c: c.name)


def _cluster(c: dict) -> records.Cluster:
    return records.Cluster(
        name=c.get("clusterName", ""),
        arn=c.get("clusterArn", ""),
        status=c.get("status", ""),
        running_tasks=int(c.get("runningTasksCount", 0)),
        pending_tasks=int(c.get("pendingTasksCount", 0)),
        active_services=int(c.get("activeServicesCount", 0)),
    )


def list_services(config: AccountConfig, region: str, cluster: str) -> list[records.Service]:
    ecs = client(config, "ecs", region)
    arns = _paginate(ecs, "list_services", "serviceArns", cluster, cluster=cluster)
    out: list[records.Service] = []
    for batch in _chunks(arns, DESCRIBE_SERVICES_BATCH):
        answer = _call(ecs.describe_services, "DescribeServices", cluster, cluster=cluster, services=batch)
        out.extend(_service(s) for s in answer.get("services", []))
    return sorted(out, key=lambda s: s.name)


def _service(s: dict) -> records.Service:
    return records.Service(
        name=s.get("serviceName", ""),
        arn=s.get("serviceArn", ""),
        status=s.get("status", ""),
        desired_count=int(s.get("desiredCount", 0)),
        running_count=int(s.get("runningCount", 0)),
        pending_count=int(s.get("pendingCount", 0)),
        launch_type=s.get("launchType", "") or _capacity_provider(s),
        task_definition=(s.get("taskDefinition") or "").rsplit("/", 1)[-1],
        enable_execute_command=bool(s.get("enableExecuteCommand", False)),
    )


def _capacity_provider(item: dict) -> str:
    strategy = item.get("capacityProviderStrategy") or []
    return strategy[0].get("capacityProvider", "") if strategy else ""


def list_task_arns(
    config: AccountConfig, region: str, cluster: str, *, desired_status: str = "RUNNING", service: str | None = None
) -> list[str]:
    ecs = client(config, "ecs", region)
    params: dict[str, Any] = {"cluster": cluster, "desiredStatus": desired_status}
    if service:
        params["serviceName"] = service
    return _paginate(ecs, "list_tasks", "taskArns", cluster, **params)


def describe_tasks(
    config: AccountConfig, region: str, cluster: str, task_arns: Iterable[str], *, role_arn: str | None = None
) -> list[records.Task]:
    """Describe any number of tasks, at most 100 per call, in order of the given ARNs (or IDs).

    ECS answers each batch in an order of its own; callers rely on ours.
    """
    ecs = client(config, "ecs", region, role_arn=role_arn)
    refs = list(task_arns)
    out: list[records.Task] = []
    for batch in _chunks(refs, DESCRIBE_TASKS_BATCH):
        answer = _call(ecs.describe_tasks, "DescribeTasks", cluster, cluster=cluster, tasks=batch)
        out.extend(task_record(t) for t in answer.get("tasks", []))
    position = {ref: index for index, ref in enumerate(refs)}
    return sorted(out, key=lambda t: position.get(t.arn, position.get(t.id, len(refs))))


LIST_TASKS_PAGE = 100


def stopped_task_pages(config: AccountConfig, region: str, cluster: str) -> Iterator[list[records.Task]]:
    """Every stopped task ECS still remembers in `cluster`, one described page at a time.

    ListTasks(desiredStatus=STOPPED) pages of at most 100 ARNs, each described in one
    DescribeTasks call (also at most 100), so memory stays flat however long the list is.
    """
    ecs = client(config, "ecs", region)
    params: dict[str, Any] = {
        "cluster": cluster,
        "desiredStatus": "STOPPED",
        "PaginationConfig": {"PageSize": LIST_TASKS_PAGE},
    }
    try:
        pages = iter(ecs.get_paginator("list_tasks").paginate(**params))
    except Exception as exc:
        raise translate(exc, operation="ListTasks", where=cluster) from exc
    while True:
        try:
            page = next(pages)
        except StopIteration:
            return
        except Exception as exc:
            raise translate(exc, operation="ListTasks", where=cluster) from exc
        arns = page.get("taskArns", [])
        if arns:
            yield describe_tasks(config, region, cluster, arns)


def running_tasks(
    config: AccountConfig, region: str, cluster: str, *, service: str | None = None
) -> list[records.Task]:
    arns = list_task_arns(config, region, cluster, service=service)
    tasks = describe_tasks(config, region, cluster, arns)
    return sorted(tasks, key=lambda t: (t.group, t.started_at or 0, t.arn))


def describe_task(config: AccountConfig, region: str, cluster: str, task: str) -> records.Task:
    found = describe_tasks(config, region, cluster, [task])
    match = [t for t in found if t.arn == task or t.id == task]
    if not match:
        raise AwsError(
            f"No task {task} in cluster {cluster}; it may have stopped over an hour ago.", code="TaskNotFound"
        )
    return match[0]


def stop_task(
    config: AccountConfig, region: str, cluster: str, task: str, *, reason: str, role_arn: str | None = None
) -> records.Task:
    ecs = client(config, "ecs", region, role_arn=role_arn)
    answer = _call(ecs.stop_task, "StopTask", f"{cluster}/{task}", cluster=cluster, task=task, reason=reason[:255])
    return task_record(answer["task"])


def execute_command(
    config: AccountConfig,
    region: str,
    cluster: str,
    task: str,
    *,
    command: str,
    container: str | None = None,
    role_arn: str | None = None,
) -> records.ExecSession:
    ecs = client(config, "ecs", region, role_arn=role_arn)
    params: dict[str, Any] = {"cluster": cluster, "task": task, "command": command, "interactive": True}
    if container:
        params["container"] = container
    answer = _call(ecs.execute_command, "ExecuteCommand", f"{cluster}/{task}", **params)
    session = answer["session"]
    return records.ExecSession(
        session_id=session["sessionId"],
        stream_url=session["streamUrl"],
        token_value=session["tokenValue"],
        container_name=answer.get("containerName", container or ""),
        task_arn=answer.get("taskArn", task),
    )


def task_record(t: dict) -> records.Task:
    return records.Task(
        arn=t.get("taskArn", ""),
        cluster_arn=t.get("clusterArn", ""),
        last_status=t.get("lastStatus", ""),
        desired_status=t.get("desiredStatus", ""),
        launch_type=t.get("launchType", "") or "",
        capacity_provider=t.get("capacityProviderName", "") or "",
        platform_version=t.get("platformVersion", "") or "",
        task_definition_arn=t.get("taskDefinitionArn", ""),
        group=t.get("group", "") or "",
        started_by=t.get("startedBy", "") or "",
        availability_zone=t.get("availabilityZone", "") or "",
        enable_execute_command=bool(t.get("enableExecuteCommand", False)),
        started_at=t.get("startedAt"),
        stopping_at=t.get("stoppingAt"),
        stopped_at=t.get("stoppedAt"),
        execution_stopped_at=t.get("executionStoppedAt"),
        stop_code=t.get("stopCode", "") or "",
        stopped_reason=t.get("stoppedReason", "") or "",
        containers=tuple(_container(c) for c in t.get("containers", [])),
        private_ip=_private_ip(t),
    )


def _private_ip(t: dict) -> str:
    """The task's address: its ENI attachment's (awsvpc), else the first container interface's."""
    for attachment in t.get("attachments", []) or []:
        for detail in attachment.get("details", []) or []:
            if detail.get("name") == "privateIPv4Address" and detail.get("value"):
                return str(detail["value"])
    for c in t.get("containers", []) or []:
        for interface in c.get("networkInterfaces", []) or []:
            if interface.get("privateIpv4Address"):
                return str(interface["privateIpv4Address"])
    return ""


def _container(c: dict) -> records.Container:
    agent = next((a for a in c.get("managedAgents", []) or [] if a.get("name") == "ExecuteCommandAgent"), {})
    return records.Container(
        name=c.get("name", "") or "",
        runtime_id=c.get("runtimeId", "") or "",
        last_status=c.get("lastStatus", "") or "",
        image=c.get("image", "") or "",
        image_digest=c.get("imageDigest", "") or "",
        exit_code=c.get("exitCode"),
        reason=c.get("reason", "") or "",
        exec_agent_status=agent.get("lastStatus", "") or "",
    )


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    """One item of a fan-out: its result, or the AwsError that item alone ran into."""

    item: T
    result: R | None = None
    error: AwsError | None = None


def fan_out(fn: Callable[[T], R], items: Iterable[T], *, max_workers: int = 8) -> list[Outcome[T, R]]:
    """Run `fn` over items concurrently; one item's failure never hides the others' results."""

    def one(item: T) -> Outcome[T, R]:
        try:
            return Outcome(item=item, result=fn(item))
        except AwsError as exc:
            return Outcome(item=item, error=exc)
        except Exception as exc:  # an unexpected failure is still that item's alone
            return Outcome(item=item, error=translate(exc))

    items = list(items)
    if len(items) <= 1:
        return [one(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        return list(pool.map(one, items))


def fan_out_as_completed(fn: Callable[[T], R], items: Iterable[T], *, max_workers: int = 8) -> Iterator[Outcome[T, R]]:
    """Like `fan_out`, but yield each item's outcome as soon as it is ready.

    The caller's thread consumes the outcomes, so it can record progress (and touch the
    database) while the AWS calls of the other items are still in flight.
    """
    items = list(items)
    if not items:
        return
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        futures = {pool.submit(fn, item): item for item in items}
        for future in as_completed(futures):
            item = futures[future]
            try:
                yield Outcome(item=item, result=future.result())
            except AwsError as exc:
                yield Outcome(item=item, error=exc)
            except Exception as exc:  # an unexpected failure is still that item's alone
                yield Outcome(item=item, error=translate(exc))
