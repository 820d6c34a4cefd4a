"""Plain records the AWS layer returns; nothing outside `aws` sees a boto3 response."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Identity:
    account_id: str
    arn: str
    user_id: str


@dataclass(frozen=True)
class Cluster:
    name: str
    arn: str
    status: str
    running_tasks: int
    pending_tasks: int
    active_services: int


@dataclass(frozen=True)
class Service:
    name: str
    arn: str
    status: str
    desired_count: int
    running_count: int
    pending_count: int
    launch_type: str
    task_definition: str
    enable_execute_command: bool


@dataclass(frozen=True)
class Container:
    name: str
    runtime_id: str
    last_status: str
    image: str
    image_digest: str
    exit_code: int | None
    reason: str
    exec_agent_status: str  # lastStatus of the ExecuteCommandAgent, "" when absent


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str


@dataclass(frozen=True)
class Task:
    arn: str
    cluster_arn: str
    last_status: str
    desired_status: str
    launch_type: str
    capacity_provider: str
    platform_version: str
    task_definition_arn: str
    group: str
    started_by: str
    availability_zone: str
    enable_execute_command: bool
    started_at: datetime | None
    stopping_at: datetime | None
    stopped_at: datetime | None
    execution_stopped_at: datetime | None
    stop_code: str
    stopped_reason: str
    containers: tuple[Container, ...] = field(default_factory=tuple)
    private_ip: str = ""  # the awsvpc ENI's address (Fargate, awsvpc), "" when ECS reports none

    @property
    def id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    @property
    def cluster_name(self) -> str:
        return self.cluster_arn.rsplit("/", 1)[-1]

    @property
    def service_name(self) -> str:
        return self.group.removeprefix("service:") if self.group.startswith("service:") else ""

    @property
    def task_definition(self) -> str:
        """family:revision"""
        return self.task_definition_arn.rsplit("/", 1)[-1]

    def container(self, name: str) -> Container | None:
        return next((c for c in self.containers if c.name == name), None)

    def exec_readiness(self, container_name: str | None = None) -> Readiness:
        """Whether ECS Exec can reach this task (and container), and if not, why in words."""
        if self.last_status != "RUNNING":
            return Readiness(False, f"The task is {self.last_status.lower()}, not running.")
        if not self.enable_execute_command:
            return Readiness(
                False,
                "ECS Exec was not enabled when this task started; enable it on the service and deploy again.",
            )
        targets = [self.container(container_name)] if container_name else list(self.containers)
        targets = [c for c in targets if c is not None]
        if not targets:
            return Readiness(False, f"The task has no container named {container_name}.")
        for c in targets:
            if c.exec_agent_status != "RUNNING":
                state = c.exec_agent_status.lower() or "missing"
                return Readiness(
                    False,
                    f"The ExecuteCommandAgent in {c.name} is {state}: the SSM agent is not "
                    "connected (task role lacks ssmmessages:*, no route to ssmmessages, or it is "
                    "still starting).",
                )
            if not c.runtime_id:
                return Readiness(False, f"Container {c.name} has no runtime ID yet; it is still starting.")
        return Readiness(True, "Ready for ECS Exec.")


@dataclass(frozen=True)
class ExecSession:
    session_id: str
    stream_url: str
    token_value: str = field(repr=False)  # secret: never logged, never stored
    container_name: str = ""
    task_arn: str = ""
