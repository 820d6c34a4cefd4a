"""A clear answer when a request's first line or a header is longer than the server reads.

daphne speaks HTTP through Twisted, whose `HTTPChannel` reads the request line and each header
line up to 16 KB (`LineReceiver.MAX_LENGTH`) and, past that, closes the connection without a
word: a pasted link with a huge query string looked like a dead server. `install()` (called
by `asgi.py`, which every daphne process imports) makes that limit answer 414 URI Too Long for
the request line and 431 Request Header Fields Too Large for a header, then close, as the
HTTP RFCs describe. nginx in front answers 414 itself past its own, smaller buffers.
"""

from __future__ import annotations

from twisted.web import http

LINE_LIMIT = http.HTTPChannel.MAX_LENGTH


def _answer(status: bytes, text: str) -> bytes:
    body = text.encode()
    head = (
        b"HTTP/1.1 " + status + b"\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"Connection: close\r\n\r\n"
    )
    return head + body


URI_TOO_LONG = _answer(
    b"414 URI Too Long",
    f"The address is longer than this server reads ({LINE_LIMIT // 1024} KB): shorten its query string.\n",
)
HEADER_TOO_LARGE = _answer(
    b"431 Request Header Fields Too Large",
    f"A request header is longer than this server reads ({LINE_LIMIT // 1024} KB): clear this site's cookies.\n",
)


def _line_length_exceeded(channel: http.HTTPChannel, line: bytes) -> None:
    # `__first_line` is true while the channel waits for a request line (Twisted's own state).
    reading_request_line = bool(getattr(channel, "_HTTPChannel__first_line", True))
    channel.transport.write(URI_TOO_LONG if reading_request_line else HEADER_TOO_LARGE)
    channel.loseConnection()


def install() -> None:
    """Idempotent; only the overlong-line case changes, every other answer stays Twisted's."""
    http.HTTPChannel.lineLengthExceeded = _line_length_exceeded
