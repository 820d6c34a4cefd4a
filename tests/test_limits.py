"""Request bodies over ECSPORTAL_MAX_REQUEST_BODY_BYTES are refused before they are read.

Against a real daphne process (the server the portal deploys with, which buffers a whole
body before the application sees it), over raw sockets so the test decides what is sent
when; and the ASGI middleware alone, for any other server.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecsportal.limits import BodyLimit
from tests.deployment import free_port, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def daphne(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    workdir = tmp_path_factory.mktemp("limits")
    port = free_port()
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "ECSPORTAL_", "DATABASE_URL", "REDIS_URL"))
        },
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "ECSPORTAL_MAX_REQUEST_BODY_BYTES": str(LIMIT),
        "TMPDIR": str(workdir),  # where Twisted would spool a body it read
    }
    log = open(workdir / "daphne.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "ecsportal.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60, proc=proc)
        yield port
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)  # small: what we sent is near what left
    return sock


def _answer(sock: socket.socket) -> bytes:
    """Everything the server says until it closes (it says little: an answer, then EOF)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _headers(port: int, *, body: str, extra: str = "") -> bytes:
    return (
        f"POST /login/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\n{body}{extra}\r\n"
    ).encode()


def test_a_declared_length_over_the_limit_is_answered_before_any_body_is_sent(daphne):
    with _connect(daphne) as sock:
        sock.sendall(_headers(daphne, body="Content-Length: 314572800\r\n"))
        answer = _answer(sock)  # not one byte of the 300 MB sent
    head, _, text = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"text/plain" in head and b"larger than the portal accepts (64 KiB)" in text


def test_a_refusal_sends_no_100_continue_to_a_client_that_asked(daphne):
    with _connect(daphne) as sock:
        sock.sendall(_headers(daphne, body="Content-Length: 314572800\r\n", extra="Expect: 100-continue\r\n"))
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in answer


def test_a_chunked_body_is_refused_as_it_passes_the_limit_not_at_its_end(daphne):
    chunk = b"a" * 8192
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    sent = 0
    with _connect(daphne) as sock:
        sock.sendall(_headers(daphne, body="Transfer-Encoding: chunked\r\n"))
        while sent < 50 * LIMIT:  # a body fifty times the limit, never finished if refused
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        else:
            pytest.fail(f"the server read all {sent} bytes without answering")
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert sent < 50 * LIMIT


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_body_within_the_limit_reaches_django(daphne, framing):
    body = b"username=someone&password=" + b"x" * (LIMIT // 2)
    if framing == "length":
        request = _headers(daphne, body=f"Content-Length: {len(body)}\r\n") + body
    else:
        request = _headers(daphne, body="Transfer-Encoding: chunked\r\n") + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    with _connect(daphne) as sock:
        sock.sendall(request)
        first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 403 ")  # Django's CSRF check answered: the body reached the application


# --- the ASGI middleware alone (servers that stream bodies to the application)


class _Recorder:
    def __init__(self, messages: list[dict]) -> None:
        self.pending = list(messages)
        self.received = 0
        self.sent: list[dict] = []
        self.app_saw: list[dict] = []
        self.app_called = False

    async def receive(self) -> dict:
        self.received += 1
        return self.pending.pop(0) if self.pending else {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    async def app(self, scope: dict, receive, send) -> None:
        """Reads the whole body first, as Django does, then answers 200."""
        self.app_called = True
        while True:
            message = await receive()
            self.app_saw.append(message)
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        if message["type"] == "http.disconnect":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _scope(headers: list[tuple[bytes, bytes]]) -> dict:
    return {"type": "http", "method": "POST", "path": "/login/", "headers": headers}


def _run(recorder: _Recorder, headers: list[tuple[bytes, bytes]], settings) -> None:
    settings.ECSPORTAL_MAX_REQUEST_BODY_BYTES = 100
    asyncio.run(BodyLimit(recorder.app)(_scope(headers), recorder.receive, recorder.send))


def test_the_middleware_answers_a_declared_length_without_calling_the_application(settings):
    recorder = _Recorder([{"type": "http.request", "body": b"x" * 50, "more_body": True}])
    _run(recorder, [(b"content-length", b"101")], settings)
    assert recorder.sent[0]["status"] == 413 and not recorder.app_called and recorder.received == 0


def test_the_middleware_stops_a_streamed_body_at_the_limit(settings):
    chunks = [{"type": "http.request", "body": b"x" * 40, "more_body": True} for _ in range(10)]
    recorder = _Recorder(chunks)
    _run(recorder, [], settings)
    assert recorder.received == 3  # 40, 80, 120 > 100: nothing more read
    assert [m["status"] for m in recorder.sent if m["type"] == "http.response.start"] == [413]
    assert recorder.app_saw[-1] == {"type": "http.disconnect"}


def test_the_middleware_passes_a_body_within_the_limit(settings):
    recorder = _Recorder([{"type": "http.request", "body": b"x" * 100, "more_body": False}])
    _run(recorder, [(b"content-length", b"100")], settings)
    assert recorder.sent[0]["status"] == 200 and recorder.sent[1]["body"] == b"ok"
