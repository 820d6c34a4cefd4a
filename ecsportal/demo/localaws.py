"""A local AWS for the demo and the tests: moto's server on loopback, seeded like a real estate.

moto drops many fields ECS returns (exec readiness, stop codes, container reasons, several
containers per task); the seed sets them on moto's backend objects, which the server shares
with this process. Nothing here reaches AWS.
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

ACCOUNT_A = "123456789012"  # moto's default account: reached with the portal's default chain
ACCOUNT_B = "210987654321"  # reached only by assuming a role with an External ID
ROLE_B = f"arn:aws:iam::{ACCOUNT_B}:role/ecsportal-access"
ROLE_B_READONLY = f"arn:aws:iam::{ACCOUNT_B}:role/ecsportal-readonly"
EXTERNAL_ID_B = "ecsportal-demo-7f3a"


def use_fake_credentials() -> None:
    """moto accepts any key; set them so boto3's default chain finds something local."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local-moto-secret")
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)


class LocalAws:
    """moto's ThreadedMotoServer on 127.0.0.1, with ECS tasks pinned in the state we set."""

    def __init__(self, port: int = 0) -> None:
        from moto.moto_api import state_manager
        from moto.server import ThreadedMotoServer

        use_fake_credentials()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        # moto advances a task one state per DescribeTasks by default; pin it so running tasks
        # stay running until StopTask (which sets STOPPED directly).
        state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**12})
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        host, bound = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{bound}"

    def stop(self) -> None:
        self._server.stop()


def start_data_channel() -> Any:
    """Start the SSM agent emulator (loopback) and hand it every locally answered ECS Exec.

    The emulator runs the requested commands for real on this machine; see ecsportal/ssm.
    """
    from ecsportal.aws import local
    from ecsportal.ssm.emulator import start_in_thread

    emulator = start_in_thread(host="127.0.0.1", port=0)

    def register(request: local.LocalExecRequest) -> str:
        return emulator.register_session(
            session_id=request.session_id, token=request.token, command=request.command, container=request.container
        )

    local.set_session_registrar(register)
    return emulator


def start_shared_data_channel(key: str, processes: int = 1) -> Any:
    """The emulator for portal processes other than this one: sessions registered over its
    ``/v1/register`` socket with `key` (`use_remote_data_channel` in those processes). One
    process: a thread of this one. More: a fleet of that many emulator processes sharing the
    registration port (`ecsportal.ssm.fleet`), for load. Either has ``registration_url`` and
    ``stop()``."""
    if processes > 1:
        from ecsportal.ssm.fleet import EmulatorFleet

        return EmulatorFleet(processes, host="127.0.0.1", registration_key=key).start()
    from ecsportal.ssm.emulator import start_in_thread

    return start_in_thread(host="127.0.0.1", port=0, registration_key=key)


def use_remote_data_channel(url: str, key: str) -> None:
    """In a portal process: hand every locally answered ECS Exec to the emulator at `url`
    (another process, started by `manage.py demo --aws-only`)."""
    from ecsportal.aws import local
    from ecsportal.ssm.emulator import remote_registrar

    remote = remote_registrar(url, key)

    def register(request: local.LocalExecRequest) -> str:
        return remote(
            session_id=request.session_id, token=request.token, command=request.command, container=request.container
        )

    local.set_session_registrar(register)


def ecs_backend(account_id: str, region: str) -> Any:
    from moto.ecs.models import ecs_backends

    return ecs_backends[account_id][region]


def find_task(account_id: str, region: str, task_arn: str) -> Any:
    for tasks in ecs_backend(account_id, region).tasks.values():
        if task_arn in tasks:
            return tasks[task_arn]
    raise KeyError(task_arn)


def boto_client(endpoint_url: str, service: str, region: str, account_id: str = ACCOUNT_A) -> Any:
    """A client acting in `account_id` (through an assumed role for any but moto's default)."""
    import boto3

    use_fake_credentials()
    if account_id == ACCOUNT_A:
        return boto3.client(service, region_name=region, endpoint_url=endpoint_url)
    sts = boto3.client("sts", region_name=region, endpoint_url=endpoint_url)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/seed", RoleSessionName="seed")["Credentials"]
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


@dataclass
class ContainerSpec:
    name: str
    image: str
    exec_agent: str = "RUNNING"  # ExecuteCommandAgent lastStatus; "" for none


@dataclass
class TaskSpec:
    family: str
    containers: list[ContainerSpec]
    service: str = ""
    exec_enabled: bool = True
    count: int = 1
    capacity_provider: str = ""


@dataclass
class StoppedSpec:
    family: str
    service: str
    stop_code: str
    stopped_reason: str
    minutes_ago: int
    containers: list[tuple[str, int | None, str]]  # name, exit code, reason
    started: bool = True


@dataclass
class ClusterSpec:
    account_id: str
    region: str
    name: str
    running: list[TaskSpec] = field(default_factory=list)
    stopped: list[StoppedSpec] = field(default_factory=list)


def _image(name: str) -> str:
    return f"{ACCOUNT_A}.dkr.ecr.eu-west-1.amazonaws.com/acme/{name}:2026.11.27"


FLEET_TASKS = 24  # the staging cluster's service "fleet": one exec-ready container per task
WEB = [ContainerSpec("app", _image("web")), ContainerSpec("envoy", "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29")]

DEMO_CLUSTERS: list[ClusterSpec] = [
    ClusterSpec(
        ACCOUNT_A,
        "eu-west-1",
        "prod-web",
        running=[
            TaskSpec("web", WEB, service="web", count=2),
            TaskSpec("worker", [ContainerSpec("worker", _image("worker"))], service="worker", exec_enabled=False),
            TaskSpec("web-canary", [ContainerSpec("app", _image("web"), exec_agent="PENDING")], service="web-canary"),
        ],
        stopped=[
            StoppedSpec(
                "web",
                "web",
                "EssentialContainerExited",
                "Essential container in task exited",
                4,
                [("app", 137, "OutOfMemoryError: Container killed due to memory usage"), ("envoy", 143, "")],
            ),
            StoppedSpec(
                "web",
                "web",
                "EssentialContainerExited",
                "Essential container in task exited",
                18,
                [("app", 137, "OutOfMemoryError: Container killed due to memory usage"), ("envoy", 143, "")],
            ),
            StoppedSpec(
                "web",
                "web",
                "TaskFailedToStart",
                "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
                f"{_image('web')}: not found",
                35,
                [("app", None, "CannotPullContainerError: pull image manifest has been retried 5 time(s)")],
                started=False,
            ),
            StoppedSpec(
                "worker",
                "worker",
                "EssentialContainerExited",
                "Essential container in task exited",
                52,
                [("worker", 1, "")],
            ),
            StoppedSpec(
                "web",
                "web",
                "ServiceSchedulerInitiated",
                "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/0a1b2c3d4e5f6a7b)",
                75,
                [("app", 143, ""), ("envoy", 143, "")],
            ),
            StoppedSpec(
                "web",
                "web",
                "ServiceSchedulerInitiated",
                "Scaling activity initiated by (deployment ecs-svc/4719830958472310)",
                190,
                [("app", 143, ""), ("envoy", 0, "")],
            ),
        ],
    ),
    ClusterSpec(
        ACCOUNT_A,
        "eu-west-1",
        "prod-batch",
        running=[
            TaskSpec("report-job", [ContainerSpec("report", _image("report"))]),
            TaskSpec("nightly-etl", [ContainerSpec("etl", _image("etl"), exec_agent="STOPPED")]),
        ],
        stopped=[
            StoppedSpec(
                "nightly-etl",
                "",
                "TaskFailedToStart",
                "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: "
                "unable to retrieve secret from asm: service call has been retried 5 time(s)",
                12,
                [("etl", None, "")],
                started=False,
            ),
            StoppedSpec(
                "report-job",
                "",
                "EssentialContainerExited",
                "Essential container in task exited",
                27,
                [("report", 139, "")],
            ),
            StoppedSpec(
                "report-job",
                "",
                "UserInitiated",
                "ecsportal #12: runaway report (requested by operator, approved by approver)",
                95,
                [("report", 143, "")],
            ),
            StoppedSpec(
                "nightly-etl", "", "TaskFailedToStart", "RESOURCE:MEMORY", 140, [("etl", None, "")], started=False
            ),
        ],
    ),
    ClusterSpec(
        ACCOUNT_A,
        "us-east-1",
        "prod-edge",
        running=[
            TaskSpec(
                "api", [ContainerSpec("api", _image("api"))], service="api", count=2, capacity_provider="FARGATE_SPOT"
            )
        ],
        stopped=[
            StoppedSpec("api", "api", "SpotInterruption", "Your Spot Task was interrupted.", 44, [("api", 143, "")]),
            StoppedSpec(
                "api",
                "api",
                "TaskFailedToStart",
                "ResourceNotFoundException: The specified secret arn:aws:secretsmanager:us-east-1:123456789012:secret:api/db-XyZ12 was not found",
                66,
                [("api", None, "")],
                started=False,
            ),
        ],
    ),
    ClusterSpec(
        ACCOUNT_B,
        "eu-west-1",
        "staging",
        running=[
            TaskSpec("web", WEB, service="web"),
            TaskSpec("worker", [ContainerSpec("worker", _image("worker"))], service="worker"),
            # "Run on many" (batches): a service with enough exec-ready tasks to try it on.
            TaskSpec("fleet", [ContainerSpec("app", _image("fleet"))], service="fleet", count=FLEET_TASKS),
        ],
        stopped=[
            StoppedSpec(
                "worker",
                "worker",
                "EssentialContainerExited",
                "Essential container in task exited",
                9,
                [("worker", 137, "OutOfMemoryError: Container killed due to memory usage")],
            ),
            StoppedSpec(
                "web",
                "web",
                "TaskFailedToStart",
                "CannotStartContainerError: Error response from daemon: failed to create shim task: OCI runtime create failed: "
                'exec: "/docker-entrypoint.sh": permission denied',
                31,
                [("app", None, "CannotStartContainerError: Error response from daemon")],
                started=False,
            ),
        ],
    ),
    ClusterSpec(
        ACCOUNT_B,
        "eu-central-1",
        "staging-eu",
        running=[TaskSpec("api", [ContainerSpec("api", _image("api"))], service="api")],
        stopped=[
            StoppedSpec(
                "api",
                "api",
                "TaskFailedToStart",
                "InternalError: failed to provision ENI for task",
                58,
                [("api", None, "")],
                started=False,
            ),
        ],
    ),
]


def _register(ecs: Any, family: str, containers: list[ContainerSpec]) -> str:
    defs = [{"name": c.name, "image": c.image, "memory": 512, "cpu": 256, "essential": True} for c in containers]
    return ecs.register_task_definition(family=family, containerDefinitions=defs)["taskDefinition"]["taskDefinitionArn"]


def _run(
    ecs: Any,
    cluster: str,
    family: str,
    containers: list[ContainerSpec],
    service: str,
    count: int,
    capacity_provider: str,
) -> list[str]:
    params: dict[str, Any] = {"cluster": cluster, "taskDefinition": family, "count": count}
    if capacity_provider:
        params["capacityProviderStrategy"] = [{"capacityProvider": capacity_provider, "weight": 1}]
    else:
        params["launchType"] = "FARGATE"
    if service:
        params["group"] = f"service:{service}"
        params["startedBy"] = f"ecs-svc/{abs(hash((cluster, service))) % 10**16:016d}"
    return [t["taskArn"] for t in ecs.run_task(**params)["tasks"]]


def shape_containers(task: Any, specs: list[ContainerSpec], *, running: bool, exec_enabled: bool) -> None:
    """Give the moto task one container per spec, with the fields real ECS returns."""
    template = task.containers[0]
    shaped = []
    for index, spec in enumerate(specs):
        c = copy.copy(template)
        c.name = spec.name
        c.image = spec.image
        c.container_arn = (
            f"arn:aws:ecs:{task.region_name}:{task._account_id}:container/{task.cluster_name}/{task.id}/{index}"
        )
        c.runtime_id = f"{task.id}-{index:04d}" if running else ""
        c.image_digest = "sha256:" + format(abs(hash((spec.image, index))), "x").rjust(64, "0")[:64]
        c.last_status = "RUNNING" if running else "STOPPED"
        c.exitCode = None
        c.reason = ""
        agents = []
        if exec_enabled and spec.exec_agent:
            agents = [{"name": "ExecuteCommandAgent", "lastStatus": spec.exec_agent if running else "STOPPED"}]
        c.managed_agents = agents
        shaped.append(c)
    task.containers = shaped
    if running and not task.attachments:  # awsvpc's ENI, as Fargate reports it: the picker shows the task's IP
        n = int(task.id[:4], 16)
        details = [{"name": "privateIPv4Address", "value": f"10.0.{n // 256 % 256}.{n % 254 + 1}"}]
        task.attachments.append(
            {"id": task.id, "type": "ElasticNetworkInterface", "status": "ATTACHED", "details": details}
        )


def seed_aws(
    endpoint_url: str, clusters: list[ClusterSpec] | None = None, *, now: datetime | None = None
) -> dict[str, list[str]]:
    """Create the demo estate in moto. Returns cluster name → task ARNs (running then stopped)."""
    now = now or datetime.now(UTC)
    created: dict[str, list[str]] = {}
    for spec in clusters or DEMO_CLUSTERS:
        ecs = boto_client(endpoint_url, "ecs", spec.region, spec.account_id)
        ecs.create_cluster(clusterName=spec.name)
        families: set[str] = set()
        arns: list[str] = []
        for task_spec in spec.running:
            if task_spec.family not in families:
                _register(ecs, task_spec.family, task_spec.containers)
                families.add(task_spec.family)
            if task_spec.service:
                _ensure_service(ecs, spec.name, task_spec)
            for arn in _run(
                ecs,
                spec.name,
                task_spec.family,
                task_spec.containers,
                task_spec.service,
                task_spec.count,
                task_spec.capacity_provider,
            ):
                task = find_task(spec.account_id, spec.region, arn)
                shape_containers(task, task_spec.containers, running=True, exec_enabled=task_spec.exec_enabled)
                task.enable_execute_command = task_spec.exec_enabled
                task.started_at = now - timedelta(hours=3, minutes=len(arns) * 7)
                task.availability_zone = f"{spec.region}{'abc'[len(arns) % 3]}"
                task.platform_version = "1.4.0"
                arns.append(arn)
        for stopped in spec.stopped:
            arns.append(_seed_stopped(ecs, spec, stopped, families, now))
        _settle_counts(spec)
        created[spec.name] = arns
    return created


def _settle_counts(spec: ClusterSpec) -> None:
    """moto counts a service's tasks as pending forever and never sets its exec flag; say what
    a settled service in real ECS says, so the overview's numbers match the task list."""
    backend = ecs_backend(spec.account_id, spec.region)
    services = {t.service: t for t in spec.running if t.service}
    cluster = backend.clusters[spec.name]
    cluster.running_tasks_count = sum(t.count for t in spec.running)
    cluster.pending_tasks_count = 0
    cluster.active_services_count = len(services)
    for name, task_spec in services.items():
        service = backend.services[f"{spec.name}:{name}"]
        service.running_count = service.desired_count
        service.pending_count = 0
        service.enable_execute_command = task_spec.exec_enabled
        for deployment in service.deployments:
            deployment.update(runningCount=service.desired_count, pendingCount=0, rolloutState="COMPLETED")


def _ensure_service(ecs: Any, cluster: str, task_spec: TaskSpec) -> None:
    existing = ecs.describe_services(cluster=cluster, services=[task_spec.service]).get("services", [])
    if any(s.get("status") == "ACTIVE" for s in existing):
        return
    ecs.create_service(
        cluster=cluster,
        serviceName=task_spec.service,
        taskDefinition=task_spec.family,
        desiredCount=task_spec.count,
        launchType="FARGATE",
        enableExecuteCommand=task_spec.exec_enabled,
    )


def _seed_stopped(ecs: Any, spec: ClusterSpec, stopped: StoppedSpec, families: set[str], now: datetime) -> str:
    containers = [ContainerSpec(name, _image(stopped.family), exec_agent="") for name, _, _ in stopped.containers]
    if stopped.family not in families:
        _register(ecs, stopped.family, containers)
        families.add(stopped.family)
    arn = _run(ecs, spec.name, stopped.family, containers, stopped.service, 1, "")[0]
    ecs.stop_task(cluster=spec.name, task=arn, reason=stopped.stopped_reason)
    task = find_task(spec.account_id, spec.region, arn)
    shape_containers(task, containers, running=False, exec_enabled=False)
    for c, (_, exit_code, reason) in zip(task.containers, stopped.containers, strict=True):
        c.exitCode = exit_code
        c.reason = reason
    stopped_at = now - timedelta(minutes=stopped.minutes_ago)
    task.stop_code = stopped.stop_code
    task.stopped_reason = stopped.stopped_reason
    task.stopping_at = stopped_at - timedelta(seconds=31)
    task.stopped_at = stopped_at
    task.execution_stopped_at = stopped_at - timedelta(seconds=2)
    task.started_at = (stopped_at - timedelta(minutes=42)) if stopped.started else None
    task.availability_zone = f"{spec.region}b"
    task.platform_version = "1.4.0"
    return arn


def seed_iam(endpoint_url: str) -> None:
    """The cross-account role of account B, trusting account A with the demo's External ID."""
    import json

    iam = boto_client(endpoint_url, "iam", "us-east-1", ACCOUNT_B)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID_B}},
            }
        ],
    }
    for arn in (ROLE_B, ROLE_B_READONLY):
        name = arn.rsplit("/", 1)[-1]
        try:
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        except iam.exceptions.EntityAlreadyExistsException:
            pass
