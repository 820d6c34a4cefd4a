"""AWS answers moto cannot give (IAM denials, throttling), injected as AWS would send them.

One helper for every test: `aws_error(...)` is a botocore `before-call` handler (the call is
answered before any HTTP, so botocore raises the ClientError with no retry); `fail_calls(client,
…, retried=True)` answers at the HTTP layer instead (`before-send`), where botocore parses AWS's
error document and applies its retries exactly as it would to a real answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from botocore.awsrequest import AWSResponse

Predicate = Callable[[dict[str, Any]], bool]


def request_of(params: dict[str, Any]) -> dict[str, Any]:
    """The JSON request body botocore is about to send (ECS speaks JSON)."""
    body = params.get("body") or b"{}"
    return json.loads(body.decode() if isinstance(body, bytes) else body)


def aws_error(
    code: str, message: str, *, status: int = 400, when: Predicate | None = None, attempts: list[str] | None = None
) -> Callable[..., tuple[AWSResponse, dict] | None]:
    """A before-call handler answering `code` (for requests `when` accepts; others go through)."""

    def answer(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict] | None:
        if when is not None and not when(request_of(params)):
            return None
        if attempts is not None:
            attempts.append(code)
        response = AWSResponse("https://ecs.amazonaws.com/", status, {}, None)
        return response, {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}

    return answer


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self._body


def _sent_error(
    code: str, message: str, *, status: int, when: Predicate | None, attempts: list[str] | None
) -> Callable[..., AWSResponse | None]:
    def answer(request: Any, **_: Any) -> AWSResponse | None:
        if when is not None and not when(json.loads(request.body or b"{}")):
            return None
        if attempts is not None:
            attempts.append(code)
        payload = json.dumps({"__type": code, "message": message}).encode()
        return AWSResponse(request.url, status, {"x-amzn-requestid": "test"}, _Raw(payload))

    return answer


def fail_calls(
    client: Any,
    operation: str,
    code: str,
    message: str = "",
    *,
    status: int = 400,
    when: Predicate | None = None,
    attempts: list[str] | None = None,
    retried: bool = False,
) -> Callable[[], None]:
    """Answer `operation` on this client with `code`; returns the function that removes the answer.

    `retried=True` answers each HTTP attempt (botocore retries throttling as with real AWS);
    otherwise the call is answered once, before botocore sends anything.
    """
    message = message or f"{code} for test"
    if retried:
        event = f"before-send.ecs.{operation}"
        handler: Callable[..., object] = _sent_error(code, message, status=status, when=when, attempts=attempts)
    else:
        event = f"before-call.ecs.{operation}"
        handler = aws_error(code, message, status=status, when=when, attempts=attempts)
    client.meta.events.register(event, handler)
    return lambda: client.meta.events.unregister(event, handler)
