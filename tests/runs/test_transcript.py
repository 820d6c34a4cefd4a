from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from ecsportal.runs import transcript
from ecsportal.runs.models import RunChunk
from tests.runs.lab import stored_run


def _chunks(*parts: tuple[float, bytes]) -> list[SimpleNamespace]:
    return [SimpleNamespace(offset=offset, data=data) for offset, data in parts]


def test_colours_cursor_moves_and_titles_are_stripped():
    raw = b"\x1b[1;31mred\x1b[0m \x1b[2K\x1b[10;5Hthere\x1b]0;my title\x07!\r\n"
    assert transcript.plain_text(_chunks((0.0, raw))) == "red there!\n"


def test_crlf_becomes_a_newline_and_a_carriage_return_overwrites_like_a_terminal():
    text = transcript.plain_text(_chunks((0.0, b"one\r\ntwo\r\n10%\r55%\r100%\r\n")))
    assert text == "one\ntwo\n100%\n"


def test_a_shorter_rewrite_keeps_the_end_of_the_longer_text():
    assert transcript.strip_escapes("abcdef\rXY") == "XYcdef"


def test_backspaces_erase_and_other_control_characters_go():
    assert transcript.strip_escapes("abc\b\bX\x07\x00\x1b") == "aX"


def test_osc_52_and_dcs_sequences_leave_nothing_behind():
    text = transcript.strip_escapes("a\x1b]52;c;aGVsbG8=\x1b\\b\x1bPq#0;2;0;0;0\x1b\\c")
    assert text == "abc"


def test_markup_is_kept_as_text():
    # The download is text/plain; the transcript must keep what the container printed.
    assert transcript.plain_text(_chunks((0, b"<script>alert(1)</script>"))) == "<script>alert(1)</script>"


def test_raw_bytes_are_exactly_what_was_sent():
    parts = _chunks((0, b"\x1b[31m"), (0.5, b"\xff\xfe"), (1, b"ok\r\n"))
    assert transcript.raw_bytes(parts) == b"\x1b[31m\xff\xfeok\r\n"


def test_a_utf8_character_split_across_chunks_is_whole_in_text_and_cast():
    parts = _chunks((0.1, b"caf" + "é".encode()[:1]), (0.2, "é".encode()[1:] + b"!"))
    assert transcript.plain_text(parts) == "café!"
    lines = [
        json.loads(line) for line in transcript.asciicast_lines(parts, width=80, height=24, timestamp=1, command="x")
    ]
    assert "".join(line[2] for line in lines[1:]) == "café!"


def test_asciicast_has_a_v2_header_then_output_events_in_time_order():
    parts = _chunks((0.25, b"hello\r\n"), (1.5, b"\x1b[32mdone\x1b[0m\r\n"), (1.2, b"late"))
    lines = list(transcript.asciicast_lines(parts, width=120, height=32, timestamp=1700000000, command="echo hi"))
    header = json.loads(lines[0])
    assert header == {"version": 2, "width": 120, "height": 32, "timestamp": 1700000000, "command": "echo hi"}
    events = [json.loads(line) for line in lines[1:]]
    assert [e[1] for e in events] == ["o", "o", "o"]
    assert [e[2] for e in events] == ["hello\r\n", "\x1b[32mdone\x1b[0m\r\n", "late"]  # escapes kept for players
    times = [e[0] for e in events]
    assert times == sorted(times) and times[0] == 0.25
    assert all(line.endswith("\n") and "\n" not in line[:-1] for line in lines)


@pytest.mark.django_db
def test_stored_chunks_read_from_the_database_make_the_same_transcript(cast):
    run = stored_run(account=cast.prod, requested_by=cast.operator)
    RunChunk.objects.create(run=run, seq=2, offset=0.4, data=b"\x1b[1mthere\x1b[0m")
    RunChunk.objects.create(run=run, seq=1, offset=0.1, data=b"hi ")
    chunks = list(RunChunk.objects.filter(run=run).order_by("seq"))  # BinaryField comes back as memoryview
    assert transcript.plain_text(chunks) == "hi there"
    assert transcript.raw_bytes(chunks) == b"hi \x1b[1mthere\x1b[0m"
