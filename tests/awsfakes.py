"""AWS answers moto cannot give (IAM denials, throttling), injected as AWS would send them.

A botocore `before-call` hook that returns a response short-circuits the HTTP call; botocore
then raises the same ClientError it would raise for a real AWS error document.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse


def request_of(params: dict[str, Any]) -> dict[str, Any]:
    """The JSON request body botocore is about to send (ECS speaks JSON)."""
    body = params.get("body") or b"{}"
    return json.loads(body.decode() if isinstance(body, bytes) else body)


def aws_error(
    code: str, message: str, *, status: int = 400, when: Callable[[dict[str, Any]], bool] | None = None
) -> Callable[..., tuple[AWSResponse, dict] | None]:
    """A before-call handler answering `code` (for requests `when` accepts; others go through)."""

    def answer(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict] | None:
        if when is not None and not when(request_of(params)):
            return None
        response = AWSResponse("https://ecs.amazonaws.com/", status, {}, None)
        return response, {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}

    return answer
