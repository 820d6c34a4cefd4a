"""Transcript downloads of hostile output: served as text, never sniffed, never markup.

The bytes a container may print to make a browser treat a download as something else: an
HTML document, a PDF header, a UTF-16 byte-order mark, escapes (OSC 52 clipboard, OSC 8 link,
title), invalid UTF-8 and a million-character line. Each download keeps its declared type, says
nosniff, carries the strict CSP (so even opened inline nothing runs) and holds the text.
"""

from __future__ import annotations

import json

import pytest

from tests.runs.test_views import _run, _with_output

pytestmark = pytest.mark.django_db

HTML = b"<!DOCTYPE html><html><head><meta http-equiv=refresh content='0;url=javascript:alert(1)'></head>"
HTML += b"<body onload=alert(2)><script>alert(3)</script><img src=x onerror=alert(4)></body></html>\r\n"
ESCAPES = (
    b"\x1b]52;c;cHduZWQ=\x07"  # OSC 52: clipboard write
    b"\x1b]8;;javascript:alert(5)\x07LINK\x1b]8;;\x07\r\n"  # OSC 8 hyperlink
    b"\x1b]0;PWNED-TITLE\x07\x1b[6n\x1bP+q544e\x1b\\"  # title, cursor report, XTGETTCAP
)
BAD_UTF8 = b"bad:\xff\xfe\xc0\x80\xed\xa0\x80\xe2\x82:end\r\n"
BIG = b"A" * 1_000_000 + b"\r\n"
CHUNKS = (b"\xff\xfe" + HTML, b"%PDF-1.4\r\n", ESCAPES, BAD_UTF8, BIG, b"END\r\n")
SENT = b"".join(CHUNKS)


@pytest.fixture
def hostile(cast):
    return _with_output(_run(cast, command="printf '<script>alert(6)</script>'"), *CHUNKS)


def _get(client, path: str):
    answer = client.get(path)
    assert answer.status_code == 200, path
    assert answer["X-Content-Type-Options"] == "nosniff"
    policy = answer["Content-Security-Policy"]
    assert "default-src 'none'" in policy or "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    return answer


@pytest.mark.parametrize("inline", [False, True])
def test_the_three_downloads_stay_text_whatever_the_container_printed(cast, login, hostile, inline):
    client = login(cast.operator)
    suffix = "inline=1" if inline else ""
    disposition = "inline" if inline else "attachment"

    text = _get(client, f"/runs/{hostile.pk}/transcript.txt?{suffix}")
    assert text["Content-Type"] == "text/plain; charset=utf-8"
    assert text["Content-Disposition"].startswith(disposition)
    body = text.content.decode("utf-8")  # valid UTF-8 whatever arrived
    assert "<script>alert(3)</script>" in body and "onerror=alert(4)" in body  # as the text it is
    assert "\x1b" not in body and "PWNED-TITLE" not in body and "cHduZWQ=" not in body
    assert "LINK" in body and "javascript:alert(5)" not in body  # OSC 8 leaves its text, not its target
    assert "bad:\ufffd" in body and ":end" in body
    assert "A" * 1_000_000 in body and body.endswith("END\n")

    raw = _get(client, f"/runs/{hostile.pk}/transcript.txt?escapes=1&{suffix}")
    assert raw["Content-Type"] == "text/plain; charset=utf-8"
    assert raw["Content-Disposition"].startswith(disposition)
    assert raw.content == SENT  # exactly the bytes, for whoever needs them

    cast_answer = _get(client, f"/runs/{hostile.pk}/transcript.cast?{suffix}")
    assert cast_answer["Content-Type"] == "application/x-asciicast; charset=utf-8"
    lines = [json.loads(line) for line in cast_answer.content.decode("utf-8").splitlines()]
    assert lines[0]["version"] == 2 and lines[0]["command"] == "printf '<script>alert(6)</script>'"
    assert "".join(event[2] for event in lines[1:]) == SENT.decode("utf-8", errors="replace")


def test_the_run_page_never_carries_the_output(cast, login, hostile):
    page = login(cast.operator).get(f"/runs/{hostile.pk}/").content
    for piece in (b"alert(3)", b"onerror=alert(4)", b"PWNED-TITLE", b"%PDF", b"AAAAAAAAAA"):
        assert piece not in page
    assert b"&lt;script&gt;alert(6)&lt;/script&gt;" in page  # the command, escaped by the template
