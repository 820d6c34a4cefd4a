"""Request and response shapes; the OpenAPI schema is built from these type hints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from ninja import Field, Schema
from pydantic import StringConstraints

Name = Field(..., min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.:/-]+$")
OptName = Field(None, min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.:/-]+$")
Region = Field(None, min_length=1, max_length=32, pattern=r"^[a-z0-9-]+$")
AccountRef = Field(..., min_length=1, max_length=100, description="The account's ID in the portal, or its name")


class Me(Schema):
    username: str
    token: str
    kind: str
    expires_at: datetime
    roles: dict[str, str] = Field(description="account name → the role this token has there")


class AccountOut(Schema):
    id: int
    name: str
    account_id: str
    regions: list[str]
    enabled: bool
    production: bool
    role: str


class ClusterOut(Schema):
    region: str
    name: str
    arn: str
    status: str
    running_tasks: int
    pending_tasks: int
    active_services: int


class ServiceOut(Schema):
    name: str
    arn: str
    status: str
    desired_count: int
    running_count: int
    pending_count: int
    launch_type: str
    task_definition: str
    exec_enabled: bool


class ContainerOut(Schema):
    name: str
    last_status: str
    image: str
    exec_ready: bool
    exec_reason: str


class TaskOut(Schema):
    id: str
    arn: str
    cluster: str
    service: str
    task_definition: str
    last_status: str
    launch_type: str
    started_at: datetime | None
    private_ip: str
    exec_ready: bool
    exec_reason: str
    containers: list[ContainerOut]


class StoppedContainerOut(Schema):
    name: str = ""
    exit_code: int | None = None
    reason: str = ""


class StoppedOut(Schema):
    id: int
    account: str
    region: str
    cluster: str
    service: str
    task_arn: str
    task_definition: str
    stop_code: str
    stopped_reason: str
    category: str
    started_at: datetime | None
    stopped_at: datetime
    containers: list[StoppedContainerOut]


class StoppedPageOut(Schema):
    count: int
    page: int
    pages: int
    items: list[StoppedOut]


class TargetIn(Schema):
    account: str = AccountRef
    region: str | None = Region
    cluster: str = Name
    service: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9_.:/-]+$",
        description="Pick a ready task of this service when no task is given",
    )
    task: str | None = Field(None, min_length=1, max_length=2048, pattern=r"^[A-Za-z0-9_.:/-]+$")
    container: str | None = OptName


class RunIn(TargetIn):
    command: str = Field(..., min_length=1, max_length=16_000)
    mode: Literal["shell", "raw"] = "shell"
    reason: str = Field("", max_length=2_000)


class RunbookRunIn(TargetIn):
    options: dict[str, str | int | bool] = Field(default_factory=dict)
    reason: str = Field("", max_length=2_000)


class RunOut(Schema):
    id: int
    url: str
    status: str
    ended: bool
    exit_code: int | None
    end_reason: str
    account: str
    region: str
    cluster: str
    task_arn: str
    container: str
    command: str
    mode: str
    runbook: str
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    bytes_out: int
    approval_id: int | None
    approval_url: str | None


class RunPageOut(Schema):
    count: int
    page: int
    pages: int
    items: list[RunOut]


class ChunkOut(Schema):
    seq: int
    data: str = Field(description="The bytes, base64")
    text: str = Field(description="The bytes as UTF-8 (undecodable bytes replaced): for people, not for files")


class OutputOut(Schema):
    run: RunOut
    chunks: list[ChunkOut]
    next_after: int = Field(description="Pass as ?after= to read on")
    complete: bool = Field(description="The run ended and every stored chunk was returned")


class RunbookOptionOut(Schema):
    name: str
    label: str
    kind: str
    required: bool
    default: str
    choices: list[str]
    secret: bool


class RunbookOut(Schema):
    id: int
    name: str
    description: str
    accounts: list[str]
    runnable_on: list[str]
    cluster_pattern: str
    container_pattern: str
    needs_approval: bool
    options: list[RunbookOptionOut]


class StopIn(Schema):
    account: str | None = Field(None, min_length=1, max_length=100)
    region: str | None = Region
    cluster: str | None = OptName
    task: str = Field(
        ..., min_length=1, max_length=2048, description="A task ID (with account and cluster) or a task ARN"
    )
    reason: str = Field(..., min_length=1, max_length=1_000)


class DecisionOut(Schema):
    approver: str
    decision: str
    comment: str
    created_at: datetime


class ApprovalOut(Schema):
    id: int
    url: str
    action: str
    target: str
    account: str
    requester: str
    reason: str
    status: str
    approvals_required: int
    approvals: int
    expires_at: datetime
    created_at: datetime
    executed_at: datetime | None
    result: str
    decisions: list[DecisionOut]


class DecisionIn(Schema):
    decision: Literal["approve", "reject"]
    comment: str = Field("", max_length=2_000)


class Problem(Schema):
    type: str
    title: str
    status: int
    detail: str


# -- batches ----------------------------------------------------------------------------------------


class BatchFilterIn(Schema):
    accounts: list[Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")]] = Field(
        ..., min_length=1, max_length=50, description="Accounts by ID or name; the token must be operator on each"
    )
    region: str | None = Region
    cluster: str | None = OptName
    service: str | None = OptName
    family: str | None = Field(None, min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_-]+$")
    revision: int | None = Field(None, ge=1, le=1_000_000)
    container: str | None = OptName
    launch_type: Literal["FARGATE", "EC2", "EXTERNAL"] | None = None
    expect_targets_sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="The preview's targets_sha256: refuse to start if the list changed"
    )


class BatchStartIn(BatchFilterIn):
    command: str | None = Field(None, min_length=1, max_length=16_000)
    runbook: str | None = Field(None, min_length=1, max_length=200, description="A runbook's ID or name")
    options: dict[str, str | int | bool] = Field(default_factory=dict, description="The runbook's option values")
    mode: Literal["shell", "raw"] = "shell"
    concurrency: int = Field(5, ge=1, le=50)
    time_limit_seconds: int | None = Field(None, ge=1, le=86_400)
    stop_after_failures: int = Field(0, ge=0, le=10_000, description="Stop starting targets after this many failed")
    reason: str = Field("", max_length=2_000)


class BatchTargetPreviewOut(Schema):
    account: str
    region: str
    cluster: str
    service: str
    task: str
    task_arn: str
    container: str
    ready: bool
    skip_reason: str | None


class BatchPreviewOut(Schema):
    targets_sha256: str
    problem: str | None = Field(description="Why this filter cannot start as it is (null: it can)")
    targets: list[BatchTargetPreviewOut]
    skipped: list[BatchTargetPreviewOut]
    errors: list[str]


class BatchGroupOut(Schema):
    group: int
    status: str
    exit_code: int | None
    output_sha256: str | None
    count: int
    summary: str


class BatchTargetOut(Schema):
    account: str
    account_id: str
    region: str
    cluster: str
    service: str
    task: str
    task_arn: str
    container: str
    in_target_list: bool
    status: str
    skip_reason: str | None
    run: int | None
    exit_code: int | None
    duration_seconds: float | None
    bytes: int
    output_group: int | None


class BatchOut(Schema):
    id: int
    url: str
    status: str
    ended: bool
    command: str
    mode: str
    runbook: str | None
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    end_reason: str
    concurrency: int
    time_limit_seconds: int
    stop_after_failures: int
    targets_sha256: str
    counts: dict[str, int]
    groups: list[BatchGroupOut]
    targets: list[BatchTargetOut]
    approval_id: int | None
    approval_url: str | None


class BatchBriefOut(Schema):
    id: int
    url: str
    status: str
    command: str
    runbook: str | None
    requested_by: str
    created_at: datetime
    ended_at: datetime | None


class BatchPageOut(Schema):
    count: int
    page: int
    pages: int
    items: list[BatchBriefOut]
