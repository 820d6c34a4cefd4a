"""The exit marker fed in pieces: whatever the chunk boundaries, the output shown is the same
and only the trailer at the very end counts."""

from __future__ import annotations

import pytest

from ecsportal.runs.marker import ExitMarker


def _feed_all(marker: ExitMarker, data: bytes, cuts: list[int]) -> tuple[bytes, int | None]:
    shown, last = bytearray(), 0
    for cut in [*cuts, len(data)]:
        shown += marker.feed(data[last:cut])
        last = cut
    rest, code = marker.finish()
    return bytes(shown + rest), code


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64])
def test_the_trailer_is_removed_and_read_wherever_the_chunks_split_it(step):
    marker = ExitMarker("ab" * 16)
    output = b"line one\r\nsecond \x1e not a marker\r\n" + ExitMarker.PREFIX + b"0" * 32 + b"=1\r\n"
    data = output + marker.marker + b"=3\r\n"
    assert _feed_all(marker, data, list(range(step, len(data), step))) == (output, 3)


def test_a_trailer_followed_by_more_output_is_output_and_no_code():
    marker = ExitMarker("cd" * 16)
    data = b"a\r\n" + marker.marker + b"=0\r\nmore\r\n"
    assert _feed_all(marker, data, [5, 20]) == (data, None)


def test_output_without_a_byte_that_could_begin_the_trailer_comes_back_as_it_is():
    marker = ExitMarker("ef" * 16)
    chunk = b"plain output\r\n" * 100
    assert marker.feed(chunk) is chunk  # passed through, not copied
    held = marker.feed(b"tail \x1e")  # a byte that could begin it is held back
    assert held == b"tail "
    assert marker.feed(b"plain") == b"\x1eplain"  # and shown once it cannot be the trailer
