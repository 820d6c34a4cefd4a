"""An address or header longer than daphne reads gets a clear 414 / 431, not a closed socket."""

from __future__ import annotations

import socket
from unittest.mock import Mock
from urllib.parse import urlsplit

from daphne.http_protocol import HTTPFactory
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

import ecsportal.asgi  # noqa: F401  (installs the limits, as every daphne process does)
from ecsportal.httplimits import LINE_LIMIT


def _answer_of(data: bytes) -> bytes:
    """What daphne's own HTTP protocol writes back for `data`, in process."""
    server = Mock()  # daphne's bookkeeping of live requests; none reaches the application here
    protocol = HTTPFactory(server=server).buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(data)
    return transport.value()


def test_a_query_string_past_the_line_limit_is_a_414():
    answer = _answer_of(b"GET /stopped/?q=" + b"a" * (LINE_LIMIT + 10) + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 414 URI Too Long\r\n")
    assert b"shorten its query string" in answer


def test_an_overlong_request_line_still_arriving_is_a_414():
    assert _answer_of(b"GET /?q=" + b"a" * (LINE_LIMIT + 10)).startswith(b"HTTP/1.1 414 ")


def test_an_overlong_header_is_a_431():
    answer = _answer_of(b"GET / HTTP/1.1\r\nHost: localhost\r\nCookie: " + b"c" * (LINE_LIMIT + 10) + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_the_running_server_answers_a_20_kb_query_string_with_414(demo_server):
    address = urlsplit(demo_server)
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        conn.sendall(b"GET /stopped/?q=" + b"x" * 20_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 414 ")
