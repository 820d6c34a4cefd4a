"""The local-AWS seam for ECS ExecuteCommand (demo and tests only).

moto does not implement ExecuteCommand. When ECSPORTAL_LOCAL_EXEC is on, every ECS client gets a
botocore `before-call.ecs.ExecuteCommand` handler that answers the call the way AWS would:
a session for a running task whose exec is enabled and whose agent is running, and AWS's own
errors otherwise. The session itself is handed to a registrar (the SSM agent emulator) that
returns the stream URL. Nothing here runs unless configuration turns it on.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.awsrequest import AWSResponse


@dataclass(frozen=True)
class LocalExecRequest:
    session_id: str
    token: str
    task_arn: str
    container: str
    command: str


Registrar = Callable[[LocalExecRequest], str]
_registrar: Registrar | None = None


def set_session_registrar(registrar: Registrar | None) -> None:
    """The emulator calls this with a function that serves a session and returns its URL."""
    global _registrar
    _registrar = registrar


def install_execute_command_seam(ecs_client: Any) -> None:
    ecs_client.meta.events.register("before-call.ecs.ExecuteCommand", _make_handler(ecs_client))


def _error(code: str, message: str) -> tuple[AWSResponse, dict]:
    response = AWSResponse("http://local.ecsportal/ecs", 400, {}, None)
    return response, {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}


def _make_handler(ecs_client: Any) -> Callable[..., tuple[AWSResponse, dict]]:
    def handler(params: dict, **_: Any) -> tuple[AWSResponse, dict]:
        body = params.get("body") or b"{}"
        request = json.loads(body.decode() if isinstance(body, bytes) else body)
        return answer_execute_command(ecs_client, request)

    return handler


def answer_execute_command(ecs_client: Any, request: dict) -> tuple[AWSResponse, dict]:
    cluster, task_ref = request.get("cluster", "default"), request.get("task", "")
    if not request.get("interactive"):
        return _error("InvalidParameterException", "Interactive is the only mode supported currently.")
    try:
        found = ecs_client.describe_tasks(cluster=cluster, tasks=[task_ref]).get("tasks", [])
    except ecs_client.exceptions.ClusterNotFoundException:
        return _error("ClusterNotFoundException", "Cluster not found.")
    task = next((t for t in found if t["taskArn"] == task_ref or t["taskArn"].endswith("/" + task_ref)), None)
    if task is None:
        return _error("InvalidParameterException", "The specified task could not be found.")
    # A stopped or exec-disabled task is refused before its containers are looked at.
    not_enabled = (
        "The execute command failed because execute command was not enabled when the task was run "
        "or the execute command agent isn't running. Wait and try again or run a new task with "
        "execute command enabled and try again."
    )
    if task.get("lastStatus") != "RUNNING" or not task.get("enableExecuteCommand"):
        return _error("InvalidParameterException", not_enabled)
    containers = task.get("containers", [])
    name = request.get("container")
    if not name and len(containers) > 1:
        return _error(
            "InvalidParameterException",
            "The task has more than one container; a container name must be given.",
        )
    container = next((c for c in containers if c.get("name") == name), None) if name else (containers or [None])[0]
    if container is None:
        return _error("InvalidParameterException", f"The container {name} does not exist in the task.")
    agent = next((a for a in container.get("managedAgents", []) or [] if a.get("name") == "ExecuteCommandAgent"), None)
    if agent is None:
        return _error("InvalidParameterException", not_enabled)
    if agent.get("lastStatus") != "RUNNING":
        return _error(
            "TargetNotConnectedException", "The execute command failed due to an internal error. Try again later."
        )
    if _registrar is None:
        return _error("ServerException", "The local data-channel emulator is not running.")
    session_id = f"ecs-execute-command-{uuid.uuid4().hex[:17]}"
    token = secrets.token_urlsafe(32)
    url = _registrar(
        LocalExecRequest(
            session_id=session_id,
            token=token,
            task_arn=task["taskArn"],
            container=container["name"],
            command=request.get("command", ""),
        )
    )
    parsed = {
        "clusterArn": task.get("clusterArn", ""),
        "taskArn": task["taskArn"],
        "containerName": container["name"],
        "containerArn": container.get("containerArn", ""),
        "interactive": True,
        "session": {"sessionId": session_id, "streamUrl": url, "tokenValue": token},
        "ResponseMetadata": {"HTTPStatusCode": 200},
    }
    return AWSResponse("http://local.ecsportal/ecs", 200, {}, None), parsed
