"""Request bodies past `ECSPORTAL_MAX_REQUEST_BODY_BYTES` are refused before they are read.

Two layers, because the server decides when a body is read:

- `guard_daphne()` (called from asgi.py) makes daphne's request class refuse in Twisted, as
  the headers end: a declared Content-Length over the limit, or a chunked body as soon as it
  passes it. Daphne hands a request to the application only once Twisted holds the whole
  body (in a temporary file past 100 KB), then queues all of it in memory at once, so nothing
  at the ASGI level could stop a 300 MB POST from being buffered twice.
- `BodyLimit`, the ASGI middleware in front of Django, does the same for any other server
  that streams bodies to the application (and for in-process clients): it answers 413 before
  Django reads a byte of a declared-too-long body, and stops a streamed one at the limit.

The answer is a short text page, 413, and the connection closes. What the client still sends
meanwhile is read and dropped for a few seconds (so it can read the answer instead of a
reset), never kept.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable

from django.conf import settings

logger = logging.getLogger(__name__)

LINGER_SECONDS = 5.0  # how long a refused connection is drained before it is cut


def body_limit() -> int:
    return settings.ECSPORTAL_MAX_REQUEST_BODY_BYTES


def refusal_text(limit: int) -> bytes:
    return (
        f"413 Content Too Large\n\nThis request's body is larger than the portal accepts "
        f"({_size(limit)}). Nothing was read or saved; send less.\n"
    ).encode()


def _size(n: int) -> str:
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n:,} bytes"


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """ASGI middleware for HTTP: 413 for a body over the limit, declared or streamed."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit()
        declared = _declared_length(scope.get("headers", []))
        if declared is not None and declared > limit:
            _log_refusal(scope, declared=declared, limit=limit)
            await _send_refusal(send, limit)
            return
        seen = 0
        refused = False
        started = False

        async def limited_receive() -> dict:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    _log_refusal(scope, declared=None, limit=limit)
                    if not started:
                        await _send_refusal(send, limit)
                    return {"type": "http.disconnect"}  # the application stops reading and answers nothing
            return message

        async def guarded_send(message: dict) -> None:
            nonlocal started
            if refused:
                return
            started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)


async def _send_refusal(send: Callable, limit: int) -> None:
    body = refusal_text(limit)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _log_refusal(scope: dict, *, declared: int | None, limit: int) -> None:
    logger.warning(
        "refused a request body over %d bytes: %s %s (%s)",
        limit,
        scope.get("method", "?"),
        scope.get("path", "?"),
        f"declared {declared}" if declared is not None else "streamed",
    )


# --- daphne ------------------------------------------------------------------------------------


def guard_daphne() -> None:
    """Swap daphne's request class for one that refuses oversized bodies in Twisted.

    Only when daphne is the server (its module is already loaded by then: daphne imports it
    before the application); a no-op for runworker, tests and other servers. Daphne's factory
    looks the class up by name at each connection, so replacing the module attribute is enough.
    """
    import sys

    module = sys.modules.get("daphne.http_protocol")
    if module is None or getattr(module.WebRequest, "_ecsportal_body_limit", False):
        return
    module.WebRequest = _limited_request_class(module.WebRequest)


def _limited_request_class(base: type) -> type:
    class LimitedWebRequest(base):
        _ecsportal_body_limit = True
        _body_refused = False
        _body_seen = 0

        def gotLength(self, length: int | None) -> None:  # Twisted's name
            limit = body_limit()
            if length is not None and length > limit:
                self.content = io.BytesIO()  # Twisted's default would be a temporary file of `length`
                # No "100 Continue" after the refusal: Twisted sends one when asked, after this call.
                self.requestHeaders.removeHeader(b"Expect")
                self._refuse_body(limit, f"declared {length}")
                return
            super().gotLength(length)

        def handleContentChunk(self, data: bytes) -> None:
            if self._body_refused:
                return
            self._body_seen += len(data)
            limit = body_limit()
            if self._body_seen > limit:
                self._refuse_body(limit, "streamed")
                return
            super().handleContentChunk(data)

        def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
            if self._body_refused:
                return  # a refused body that still completed: the application never sees it
            super().requestReceived(command, path, version)

        def _refuse_body(self, limit: int, how: str) -> None:
            from twisted.internet import reactor

            self._body_refused = True
            channel = self.channel
            logger.warning(
                "refused a request body over %d bytes: %s %s (%s)",
                limit,
                getattr(channel, "_command", b"?").decode("ascii", "replace"),
                getattr(channel, "_path", b"?").decode("ascii", "replace")[:200],
                how,
            )
            body = refusal_text(limit)
            head = (
                b"HTTP/1.1 413 Content Too Large\r\n"
                b"Content-Type: text/plain; charset=utf-8\r\n"
                b"X-Content-Type-Options: nosniff\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
            )
            transport = channel.transport
            # Whatever the client still sends is read and dropped (not parsed, not kept) so that it
            # can read this answer; the connection is cut after LINGER_SECONDS in any case.
            channel.dataReceived = lambda data: None
            transport.write(head + body)
            lose_write = getattr(transport, "loseWriteConnection", None)
            if lose_write is not None:
                lose_write()
            reactor.callLater(LINGER_SECONDS, _cut, transport)

    def _cut(transport: object) -> None:
        if getattr(transport, "connected", False):
            transport.abortConnection()

    LimitedWebRequest.__name__ = LimitedWebRequest.__qualname__ = f"Limited{base.__name__}"
    return LimitedWebRequest
