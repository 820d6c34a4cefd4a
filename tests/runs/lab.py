"""A lab for runs: its own account, region and cluster in the local AWS, with fresh tasks.

Runs stop tasks (the watchdog tests), so the lab has a region of its own (`tests/lab.py`).
Every test starts the tasks it needs, shaped like real ECS (exec enabled, agent running)
unless told otherwise. tests/runs/conftest.py (and tests/audit/conftest.py) import the
fixtures; the helpers (`stored_run`, `wait_ended`, `connect`, …) are imported by name.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from ecsportal.demo import localaws
from tests.lab import lab_account, lab_cluster
from tests.lab import lab_task as start_task

RUNS_REGION = "ap-northeast-1"
RUNS_CLUSTER = "runs-lab"
ORIGIN = (b"origin", b"http://localhost")

__all__ = [
    "RUNS_CLUSTER",
    "RUNS_REGION",
    "connect",
    "fast_runs",
    "lab_task",
    "read_until_finished",
    "run_as",
    "runs_ecs",
    "runs_lab",
    "wait_ended",
]


@pytest.fixture(scope="session")
def runs_ecs(local_aws, data_channel):
    return lab_cluster(local_aws.endpoint_url, region=RUNS_REGION, cluster=RUNS_CLUSTER, families=("runs-web",))


@pytest.fixture
def lab_task(runs_ecs) -> Callable[..., str]:
    """`lab_task(exec_enabled=True, agent="RUNNING", age_minutes=60)` → ARN of a new running task
    (containers "app" and "sidecar", in service "web")."""

    def _start(*, exec_enabled: bool = True, agent: str = "RUNNING", age_minutes: float = 60) -> str:
        specs = [localaws.ContainerSpec("app", "lab/app:1", agent), localaws.ContainerSpec("sidecar", "lab/side:1")]
        return start_task(
            runs_ecs,
            region=RUNS_REGION,
            cluster=RUNS_CLUSTER,
            family="runs-web",
            containers=specs,
            exec_enabled=exec_enabled,
            age_minutes=age_minutes,
        )

    return _start


@pytest.fixture
def runs_lab(cast):
    """The lab account (no approvals for commands) with the cast's roles; admin is superuser."""
    return lab_account(
        cast,
        name="Runs Lab",
        region=RUNS_REGION,
        approvals_for_commands=0,
        approvals_for_runbooks=0,
        allowed_role_arns=[],
    )


@pytest.fixture
def fast_runs(settings):
    """Short watchdog intervals, so the tests are quick."""
    settings.ECSPORTAL_RUN_HEARTBEAT_SECONDS = 0.1
    settings.ECSPORTAL_RUN_TASK_CHECK_SECONDS = 0.2
    settings.ECSPORTAL_RUN_CANCEL_GRACE_SECONDS = 0.5
    settings.ECSPORTAL_RUN_AGENT_WAIT_SECONDS = 60
    settings.ECSPORTAL_RUNNER_MODE = "inprocess"
    return settings


@pytest.fixture
def run_as(runs_lab, lab_task, fast_runs):
    """`await run_as(user, command, mode=…, task=…, container="app")` → the Run (created through the service)."""
    from ecsportal.runs import dispatcher, services

    async def _run(user, command: str, *, task: str | None = None, container: str = "app", **options):
        dispatcher.bind_loop(asyncio.get_running_loop())
        arn = task or await sync_to_async(lab_task)()
        return await sync_to_async(services.run_request)(
            actor=user,
            account_pk=runs_lab.pk,
            region=RUNS_REGION,
            cluster=RUNS_CLUSTER,
            task=arn,
            container=container,
            command=command,
            **options,
        )

    return _run


def stored_run(*, account, requested_by, **fields):
    """A Run row as the services leave one, for tests that need a run without running it."""
    from ecsportal.runs.models import Run

    values = {
        "region": "eu-west-1",
        "cluster": "prod-web",
        "task_arn": f"arn:aws:ecs:eu-west-1:{account.account_id}:task/prod-web/abc",
        "container": "app",
        "command": "echo hi",
        "command_sha256": "0" * 64,
    }
    values.update(fields)
    return Run.objects.create(account=account, requested_by=requested_by, **values)


async def wait_ended(run_pk: int, timeout: float = 30.0):
    """The run once it has ended (polls the database; fails after `timeout`)."""
    from ecsportal.runs.models import END_STATUSES, Run

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        run = await database_sync_to_async(Run.objects.get)(pk=run_pk)
        if run.status in END_STATUSES:
            return run
        if loop.time() > deadline:
            raise AssertionError(f"run {run_pk} still {run.status} after {timeout} s")
        await asyncio.sleep(0.05)


def _cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def connect(path: str, user=None) -> tuple[WebsocketCommunicator, bool, int | None]:
    """A socket through the full ASGI application: (communicator, accepted, close code if refused)."""
    from ecsportal.asgi import application

    headers = [ORIGIN]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(_cookie)(user)))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=10)
    return communicator, connected, (None if connected else code)


async def read_until_finished(
    communicator: WebsocketCommunicator, timeout: float = 30.0, *, replayed: int | None = None
) -> SimpleNamespace:
    """Every message until the transcript is replayed and the run has ended: output bytes joined, seqs, statuses, and where `replayed` came."""
    import base64

    seqs: list[int] = []
    data = bytearray()
    statuses: list[dict] = []
    replayed_at = replayed  # pass it when the replay was already read
    while True:
        message = json.loads(await communicator.receive_from(timeout=timeout))
        if message["type"] == "output":
            seqs.append(message["seq"])
            data.extend(base64.b64decode(message["data"]))
        elif message["type"] == "replayed":
            replayed_at = message["seq"]
        elif message["type"] == "status":
            statuses.append(message)
        if replayed_at is not None and statuses and statuses[-1]["finished"]:
            return SimpleNamespace(data=bytes(data), seqs=seqs, statuses=statuses, replayed=replayed_at)
