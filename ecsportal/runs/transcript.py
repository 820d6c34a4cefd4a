"""A run's transcript as downloads: plain text (escapes stripped or kept) and asciicast v2.

Container output is hostile: these functions never produce markup, only text for a
`text/plain` response or JSON lines for an asciicast player. Chunks are taken as stored
(`RunChunk.offset`, `RunChunk.data`); a UTF-8 character split across two chunks is joined by
an incremental decoder, never replaced twice.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from typing import Protocol

# ECMA-48: CSI … final byte; OSC … BEL or ST; DCS/SOS/PM/APC … ST; charset designations;
# the other two-byte escapes. The 8-bit C1 forms (CSI U+009B, OSC U+009D …) too.
_ESCAPES = re.compile(
    r"""
      (?:\x1b\[|\x9b) [0-?]* [ -/]* [@-~]                      # CSI
    | (?:\x1b\]|\x9d) .*? (?:\x07|\x1b\\|\x9c)                 # OSC, to BEL or ST
    | (?:\x1b[P^_X]|[\x90\x98\x9e\x9f]) .*? (?:\x1b\\|\x9c)    # DCS, SOS, PM, APC
    | \x1b [()*+\-./] .                                        # charset designation
    | \x1b [ -/]* [0-~]                                        # other escapes (ESC 7, ESC =, …)
    | \x1b                                                     # a lone, unfinished escape
    """,
    re.VERBOSE | re.DOTALL,
)
# Control characters that mean nothing in a text file (tab, newline and CR are handled apart).
_CONTROLS = re.compile(r"[\x00-\x07\x0b\x0c\x0e-\x1f\x7f\x80-\x9f]")


class Chunk(Protocol):
    offset: float
    data: bytes | memoryview


def _bytes(data: bytes | memoryview) -> bytes:
    return bytes(data)


def raw_bytes(chunks: Iterable[Chunk]) -> bytes:
    """Every byte the container sent, escapes and all."""
    return b"".join(_bytes(c.data) for c in chunks)


def _line_as_shown(line: str) -> str:
    """What a terminal would leave on a line: a carriage return starts over, a backspace erases."""
    if "\r" in line:
        parts = [p for p in line.split("\r")]
        shown = ""
        for part in parts:  # a CR rewinds; later text overwrites earlier text character by character
            shown = part + shown[len(part) :]
        line = shown
    if "\b" in line:
        out: list[str] = []
        for ch in line:
            if ch == "\b":
                if out:
                    out.pop()
            else:
                out.append(ch)
        line = "".join(out)
    return line


def strip_escapes(text: str) -> str:
    """Plain text as a person would read it off the terminal: no escape sequences, no controls."""
    text = _ESCAPES.sub("", text)
    lines = text.replace("\r\n", "\n").split("\n")
    lines = [_CONTROLS.sub("", _line_as_shown(line)) for line in lines]
    return "\n".join(lines)


def plain_text(chunks: Iterable[Chunk]) -> str:
    return strip_escapes(raw_bytes(chunks).decode("utf-8", errors="replace"))


def asciicast_lines(
    chunks: Iterable[Chunk],
    *,
    width: int,
    height: int,
    timestamp: int,
    command: str,
    title: str = "",
    events: Iterable[tuple[float, str, str]] = (),
) -> Iterator[str]:
    """asciicast v2: a header object, then one `[seconds, "o", text]` line per chunk (times never
    go back). An interactive session's `events` (offset, "r" | "m" | "i", data: resizes, who
    typed, and input where recorded) are merged in by time, after output of the same time."""
    header: dict[str, object] = {
        "version": 2,
        "width": width,
        "height": height,
        "timestamp": timestamp,
        "command": command,
    }
    if title:
        header["title"] = title
    yield json.dumps(header) + "\n"
    pending = sorted(events, key=lambda event: event[0])
    index = 0
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    last = 0.0
    for chunk in chunks:
        offset = round(float(chunk.offset), 6)
        while index < len(pending) and pending[index][0] < offset:
            at, kind, data = pending[index]
            last = max(last, round(float(at), 6))
            yield json.dumps([last, kind, data]) + "\n"
            index += 1
        text = decoder.decode(_bytes(chunk.data))
        last = max(last, offset)
        if text:
            yield json.dumps([last, "o", text]) + "\n"
    rest = decoder.decode(b"", final=True)
    if rest:
        yield json.dumps([last, "o", rest]) + "\n"
    for at, kind, data in pending[index:]:
        last = max(last, round(float(at), 6))
        yield json.dumps([last, kind, data]) + "\n"
