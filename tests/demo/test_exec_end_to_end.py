"""ECS Exec end to end on the local parts: ExecuteCommand (moto + seam) → emulator → SsmClient."""

from __future__ import annotations

import asyncio

import pytest

from ecsportal.aws import ecs
from ecsportal.aws.errors import ExecNotEnabled, TargetNotConnected
from ecsportal.aws.sessions import AccountConfig
from ecsportal.demo import localaws
from ecsportal.ssm.client import SsmClient
from ecsportal.ssm.session import EndKind

PROD = AccountConfig(key="e2e-prod", account_id=localaws.ACCOUNT_A)


def _task(cluster: str, family: str) -> str:
    arns = ecs.list_task_arns(PROD, "eu-west-1", cluster)
    for task in ecs.describe_tasks(PROD, "eu-west-1", cluster, arns):
        if task.task_definition.startswith(family + ":"):
            return task.arn
    raise AssertionError(f"no {family} task in {cluster}")


async def _collect(url: str, token: str) -> tuple[bytes, object]:
    out = bytearray()
    async with SsmClient(url, token, open_timeout=5, idle_timeout=10) as client:
        await client.resize(120, 40)
        async for chunk in client:
            out.extend(chunk)
        return bytes(out), client.end


def test_a_command_runs_in_the_emulator_and_its_output_streams_back(local_aws, data_channel):
    task = _task("prod-web", "web")
    session = ecs.execute_command(
        PROD, "eu-west-1", "prod-web", task, container="app", command="/bin/sh -c 'echo hello from $((6*7)); exit 3'"
    )
    assert session.stream_url.startswith("ws://127.0.0.1:")
    assert "tokenValue" not in repr(session) and session.token_value not in repr(session)

    output, end = asyncio.run(_collect(session.stream_url, session.token_value))

    assert b"hello from 42" in output
    assert end.kind == EndKind.NORMAL


def test_exec_refusals_come_back_as_the_projects_errors(local_aws, data_channel):
    with pytest.raises(ExecNotEnabled):
        ecs.execute_command(PROD, "eu-west-1", "prod-web", _task("prod-web", "worker"), command="true")
    with pytest.raises(TargetNotConnected):
        ecs.execute_command(PROD, "eu-west-1", "prod-web", _task("prod-web", "web-canary"), command="true")
