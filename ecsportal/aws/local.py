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


NOT_ENABLED = (
    "The execute command failed because execute command was not enabled when the task was run "
    "or the execute command agent isn't running. Wait and try again or run a new task with "
    "execute command enabled and try again."
)


class _Refused(Exception):
    """AWS's answer when ExecuteCommand is refused: its error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def answer_execute_command(ecs_client: Any, request: dict) -> tuple[AWSResponse, dict]:
    try:
        task, container = _target(ecs_client, request)
    except _Refused as refusal:
        return _error(refusal.code, refusal.message)
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


def _target(ecs_client: Any, request: dict) -> tuple[dict, dict]:
    """The task and container the request names, checked in the order AWS checks them."""
    if not request.get("interactive"):
        raise _Refused("InvalidParameterException", "Interactive is the only mode supported currently.")
    cluster, task_ref = request.get("cluster", "default"), request.get("task", "")
    try:
        found = ecs_client.describe_tasks(cluster=cluster, tasks=[task_ref]).get("tasks", [])
    except ecs_client.exceptions.ClusterNotFoundException:
        raise _Refused("ClusterNotFoundException", "Cluster not found.") from None
    task = next((t for t in found if t["taskArn"] == task_ref or t["taskArn"].endswith("/" + task_ref)), None)
    if task is None:
        raise _Refused("InvalidParameterException", "The specified task could not be found.")
    # A stopped or exec-disabled task is refused before its containers are looked at.
    if task.get("lastStatus") != "RUNNING" or not task.get("enableExecuteCommand"):
        raise _Refused("InvalidParameterException", NOT_ENABLED)
    container = _container(task.get("containers", []), request.get("container"))
    agent = next((a for a in container.get("managedAgents", []) or [] if a.get("name") == "ExecuteCommandAgent"), None)
    if agent is None:
        raise _Refused("InvalidParameterException", NOT_ENABLED)
    if agent.get("lastStatus") != "RUNNING":
        raise _Refused(
            "TargetNotConnectedException", "The execute command failed due to an internal error. Try again later."
        )
    return task, container


def _container(containers: list[dict], name: str | None) -> dict:
    if not name:
        if len(containers) > 1:
            raise _Refused(
                "InvalidParameterException", "The task has more than one container; a container name must be given."
            )
        if containers:
            return containers[0]
    found = next((c for c in containers if c.get("name") == name), None)
    if found is None:
        raise _Refused("InvalidParameterException", f"The container {name} does not exist in the task.")
    return found
