"""The local ExecuteCommand seam answers as AWS does: a session, or AWS's own errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from ecsportal.aws import ecs, errors, local, sessions
from ecsportal.aws.sessions import AccountConfig
from ecsportal.demo import localaws

REGION = "eu-west-1"


@pytest.fixture
def registrar(local_aws) -> Iterator[list[local.LocalExecRequest]]:
    """Stands in for the SSM agent emulator: records each session, answers with its URL."""
    seen: list[local.LocalExecRequest] = []

    def register(request: local.LocalExecRequest) -> str:
        seen.append(request)
        return f"ws://127.0.0.1:9/session/{request.session_id}"

    saved = local._registrar
    local.set_session_registrar(register)
    yield seen
    local.set_session_registrar(saved)


def config() -> AccountConfig:
    return AccountConfig(key=f"t-local-{uuid.uuid4().hex}", account_id=localaws.ACCOUNT_A)


def task_of(cluster: str, family: str) -> str:
    tasks = ecs.running_tasks(config(), REGION, cluster)
    return next(t.arn for t in tasks if t.task_definition.split(":")[0] == family)


def test_a_ready_task_gets_a_session_from_the_registrar(registrar):
    task = task_of("prod-web", "web")
    session = ecs.execute_command(config(), REGION, "prod-web", task, command="uname -a", container="app")
    assert [(r.task_arn, r.container, r.command) for r in registrar] == [(task, "app", "uname -a")]
    assert session.session_id == registrar[0].session_id
    assert session.stream_url == f"ws://127.0.0.1:9/session/{session.session_id}"
    assert session.token_value == registrar[0].token and len(session.token_value) >= 32
    assert session.container_name == "app"
    assert session.task_arn == task
    assert session.token_value not in repr(session)


def test_a_single_container_task_needs_no_container_name(registrar):
    task = task_of("prod-batch", "report-job")
    session = ecs.execute_command(config(), REGION, "prod-batch", task, command="ls")
    assert session.container_name == "report"


def test_task_id_works_as_well_as_the_arn(registrar):
    task = task_of("prod-batch", "report-job")
    session = ecs.execute_command(config(), REGION, "prod-batch", task.rsplit("/", 1)[-1], command="ls")
    assert session.task_arn == task


def test_exec_disabled_task_is_refused_with_awss_words(registrar):
    task = task_of("prod-web", "worker")
    with pytest.raises(errors.ExecNotEnabled) as caught:
        ecs.execute_command(config(), REGION, "prod-web", task, command="ls")
    assert caught.value.code == "InvalidParameterException"
    assert "execute command was not enabled when the task was run" in str(caught.value)
    assert "update-service --enable-execute-command" in str(caught.value)
    assert registrar == []


@pytest.mark.parametrize(("cluster", "family"), [("prod-web", "web-canary"), ("prod-batch", "nightly-etl")])
def test_agent_not_running_is_target_not_connected(registrar, cluster, family):
    with pytest.raises(errors.TargetNotConnected) as caught:
        ecs.execute_command(config(), REGION, cluster, task_of(cluster, family), command="ls")
    assert caught.value.code == "TargetNotConnectedException"
    assert "ssmmessages" in str(caught.value)
    assert registrar == []


def test_multi_container_task_without_a_container_name_is_invalid(registrar):
    with pytest.raises(errors.InvalidRequest) as caught:
        ecs.execute_command(config(), REGION, "prod-web", task_of("prod-web", "web"), command="ls")
    assert caught.value.code == "InvalidParameterException"
    assert not isinstance(caught.value, errors.ExecNotEnabled)
    assert "container name must be given" in str(caught.value)


def test_unknown_container_is_invalid(registrar):
    with pytest.raises(errors.InvalidRequest, match="The container nope does not exist"):
        ecs.execute_command(config(), REGION, "prod-web", task_of("prod-web", "web"), command="ls", container="nope")


def test_stopped_task_is_refused(registrar):
    cfg = config()
    stopped = ecs.list_task_arns(cfg, REGION, "prod-web", desired_status="STOPPED")[0]
    with pytest.raises(errors.ExecNotEnabled):
        ecs.execute_command(cfg, REGION, "prod-web", stopped, command="ls")


def test_unknown_cluster_is_not_found(registrar):
    with pytest.raises(errors.NotFound):
        ecs.execute_command(config(), REGION, "no-such-cluster", "0" * 32, command="ls")


def test_non_interactive_call_is_invalid(registrar):
    client = sessions.client(config(), "ecs", REGION)
    with pytest.raises(ClientError) as caught:
        client.execute_command(
            cluster="prod-web", task=task_of("prod-web", "web"), container="app", command="ls", interactive=False
        )
    assert caught.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "Interactive is the only mode supported" in caught.value.response["Error"]["Message"]
    assert registrar == []


def test_no_emulator_running_is_a_server_error(local_aws):
    saved = local._registrar
    local.set_session_registrar(None)
    try:
        with pytest.raises(errors.AwsError, match="emulator is not running"):
            ecs.execute_command(config(), REGION, "prod-web", task_of("prod-web", "web"), command="ls", container="app")
    finally:
        local.set_session_registrar(saved)


def test_the_seam_is_not_installed_unless_configured(aws_settings, registrar):
    aws_settings(local_exec=False)
    with pytest.raises(errors.AwsError):
        ecs.execute_command(config(), REGION, "prod-web", task_of("prod-web", "web"), command="ls", container="app")
    assert registrar == [], "the local seam answered although local_exec is off"
