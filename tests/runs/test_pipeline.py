"""The run's path from the agent to the database and the viewers, under faults and limits:
storage failures retried without losing a byte or killing the command, the output budget,
silence told from loss, and coalescing of a busy run's output."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError

from ecsportal.runs import runner, sink, writer
from ecsportal.runs.models import Run, RunChunk, RunStatus
from ecsportal.runs.selectors import run_transcript_bytes
from ecsportal.runs.writer import budget_note
from tests.runs.lab import wait_ended

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _lines(first: int, last: int) -> bytes:
    """What `seq first last` prints through the emulator's pseudo-terminal."""
    return b"".join(b"%d\r\n" % i for i in range(first, last + 1))


async def _transcript(run: Run) -> bytes:
    return await sync_to_async(run_transcript_bytes)(run=run)


class Outage:
    """The database refuses from the first call it sees until `seconds` later, then recovers."""

    def __init__(self, real, seconds: float) -> None:
        self.real, self.seconds = real, seconds
        self.began: float | None = None
        self.refused = 0

    def __call__(self, *args, **kwargs):
        now = time.monotonic()
        if self.began is None:
            self.began = now
        if now - self.began < self.seconds:
            self.refused += 1
            raise OperationalError("server closed the connection unexpectedly")
        return self.real(*args, **kwargs)


async def test_a_database_outage_mid_run_loses_no_byte_and_kills_no_command(cast, run_as, monkeypatch):
    outage = Outage(sink._insert_chunks, seconds=3)
    monkeypatch.setattr(sink, "_insert_chunks", outage)
    monkeypatch.setattr(writer, "MAX_UNSTORED", 16 * 1024)  # past it the reader waits, holding the agent back
    run = await run_as(cast.operator, "for i in $(seq 1 30); do echo line $i; sleep 0.05; done; seq 1 20000; exit 4")
    run = await wait_ended(run.pk, timeout=60)
    assert outage.refused >= 2  # the outage was felt, and tried again
    assert (run.status, run.exit_code) == (RunStatus.FAILED, 4)  # the command ran to its own end
    expected = b"".join(b"line %d\r\n" % i for i in range(1, 31)) + _lines(1, 20000)
    transcript = await _transcript(run)
    assert transcript == expected
    assert run.bytes_out == len(expected)
    seqs = await sync_to_async(list)(RunChunk.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))


async def test_the_end_of_a_run_is_recorded_after_the_database_comes_back(cast, run_as, monkeypatch):
    outage = Outage(runner.run_end, seconds=1.0)
    monkeypatch.setattr(runner, "run_end", outage)
    run = await run_as(cast.operator, "echo done")
    run = await wait_ended(run.pk, timeout=30)
    assert outage.refused >= 1
    assert (run.status, run.exit_code, run.end_reason) == (RunStatus.SUCCEEDED, 0, "Exited with 0.")


async def test_output_past_the_budget_is_cut_with_a_note_and_the_run_goes_on(cast, run_as, fast_runs):
    fast_runs.ECSPORTAL_RUN_OUTPUT_BUDGET_BYTES = 1000
    run = await run_as(cast.operator, "seq 1 5000; echo still here >&2; exit 3")
    run = await wait_ended(run.pk, timeout=30)
    assert (run.status, run.exit_code) == (RunStatus.FAILED, 3)  # it went on to its own exit code
    transcript = await _transcript(run)
    assert transcript == _lines(1, 5000)[:1000] + budget_note(1000)
    assert b"passed its budget of 1,000 bytes" in transcript
    assert run.bytes_out == len(transcript)
    assert "Output past the budget of 1,000 bytes was cut" in run.end_reason
    assert run.end_reason.startswith("Exited with 3.")


async def test_a_quiet_command_is_not_a_lost_channel_and_the_silence_limit_says_so(cast, run_as, fast_runs):
    fast_runs.ECSPORTAL_RUN_IDLE_SECONDS = 1
    run = await run_as(cast.operator, "echo started; sleep 30")
    run = await wait_ended(run.pk, timeout=20)
    assert run.status == RunStatus.TIMED_OUT
    assert run.end_reason.startswith("No output for 1 second")
    assert "Channel lost" not in run.end_reason


async def test_a_quiet_command_without_a_silence_limit_runs_to_its_end(cast, run_as, fast_runs):
    fast_runs.ECSPORTAL_RUN_IDLE_SECONDS = 0
    run = await run_as(cast.operator, "sleep 1.5; echo woke")
    run = await wait_ended(run.pk, timeout=20)
    assert (run.status, run.exit_code) == (RunStatus.SUCCEEDED, 0)
    assert await _transcript(run) == b"woke\r\n"


async def test_coalescing_lets_an_idle_or_a_jittery_run_through_and_holds_a_busy_one_to_the_interval(fast_runs):
    """The bucket alone, on given clock readings (no timing in the test): a run printing about
    once an interval, early or late, never waits (the plain "at most once per interval" made
    such a run wait most of an interval for a line that came a little early); a burst beyond
    `BURST` does, one chunk per interval."""
    fast_runs.ECSPORTAL_RUN_COALESCE_MS = 20
    w = writer.TranscriptWriter(0, started=0.0)
    try:

        def publish_at(now: float) -> float:
            wait = w._token_wait(now)
            w._token_wait(now + wait)
            w._take_token()
            return wait

        jittery = [100 + i * 0.020 + (0.004 if i % 2 else -0.004) for i in range(200)]  # 50 a second, ±4 ms
        assert [publish_at(t) for t in jittery] == [0.0] * 200
        quiet = 200.0  # then a burst, all at once after a quiet moment
        waits = [publish_at(quiet) for _ in range(writer.BURST + 3)]
        assert waits[: writer.BURST] == [0.0] * writer.BURST  # a burst goes out at once
        assert waits[writer.BURST] == pytest.approx(0.020)  # then one chunk per interval
        published, now = 0, 300.0
        while now < 301.0:  # a second of output always pending: the interval is the rate
            now += publish_at(now)
            published += 1
        assert published <= writer.BURST + 50
        # A keystroke in a shell: its echo goes out at once though the bucket is empty, once.
        assert publish_at(now) > 0
        w.expect_echo()
        assert publish_at(now) == 0.0
        assert publish_at(now) > 0  # and the flood is held to the rate again
    finally:
        await w.abort()


async def test_a_busy_runs_output_is_coalesced_and_an_idle_runs_goes_out_alone(cast, run_as, fast_runs):
    fast_runs.ECSPORTAL_RUN_COALESCE_MS = 400
    run = await run_as(cast.operator, "for i in $(seq 1 40); do echo line $i; sleep 0.02; done")
    run = await wait_ended(run.pk, timeout=30)
    chunks = await sync_to_async(RunChunk.objects.filter(run=run).count)()
    assert await _transcript(run) == b"".join(b"line %d\r\n" % i for i in range(1, 41))
    assert chunks < 10 + writer.BURST  # forty lines over about a second: a burst, then one row per 400 ms
    fast_runs.ECSPORTAL_RUN_COALESCE_MS = 0
    run = await run_as(cast.operator, "for i in $(seq 1 5); do echo line $i; sleep 0.3; done")
    run = await wait_ended(run.pk, timeout=30)
    assert await sync_to_async(RunChunk.objects.filter(run=run).count)() == 5  # each quiet line its own row


async def test_output_that_finds_the_publisher_idle_is_published_in_order_and_all_of_it_stored(cast, fast_runs):
    """In one process `append` publishes what the publisher would send at once itself (no task
    step per chunk): what it publishes and what the publisher coalesces after the burst keep
    one order, every chunk is in the stream or the database, and the transcript is all of it."""
    from ecsportal.runs.streams import MemoryStreams
    from tests.runs.lab import stored_run

    fast_runs.ECSPORTAL_RUN_COALESCE_MS = 50
    # One process, as `manage.py demo` serves: in-memory streams and layer, also where CI sets REDIS_URL.
    fast_runs.REDIS_URL = ""
    fast_runs.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    run = await sync_to_async(stored_run)(account=cast.prod, requested_by=cast.operator)
    w = writer.TranscriptWriter(run.pk, started=0.0)
    rung: list[int] = []
    w.bells.watch(run.pk, rung.append)
    try:
        assert isinstance(w.streams, MemoryStreams) and w._direct
        await asyncio.sleep(0)  # the publisher task starts and waits for output
        pieces = [b"line %d\r\n" % i for i in range(1, 13)]
        for piece in pieces:  # one step of the reader's: the loop runs nothing in between
            w.append(piece)
        # The bucket's burst went out from append itself, at once, one chunk per piece.
        assert rung == list(range(1, writer.BURST + 1))
        held = await w.streams.read(run.pk, 0, limit=100)
        assert held == [(i, pieces[i - 1]) for i in range(1, writer.BURST + 1)]
        w.append(b"last\r\n")
        await w.close()
    finally:
        w.bells.unwatch(run.pk, rung.append)
    # The rest was coalesced by the publisher (fewer chunks than pieces), after the burst, in order.
    assert rung == list(range(1, w.seq + 1))
    assert writer.BURST < w.seq < len(pieces) + 1
    assert await _transcript(run) == b"".join(pieces) + b"last\r\n"
    assert w.written == w.accepted == len(b"".join(pieces) + b"last\r\n")


async def test_a_round_full_of_output_is_stored_at_once_whatever_the_pace(cast, fast_runs, monkeypatch):
    """The sink paces its rounds (one per `ROUND_EVERY` in one process) so that quiet lines
    gather; a round that already holds `ROUND_FULL` bytes must not wait for the pace, or a bulk
    run (a megabyte a round at most) would be held to ten rounds a second. Here the pace is an
    hour: three full rounds in a row are stored at once, and every row is there."""
    from tests.runs.lab import stored_run

    fast_runs.REDIS_URL = ""  # the in-memory streams, where rounds are paced
    fast_runs.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    monkeypatch.setattr(sink, "ROUND_EVERY", 3600.0)
    run = await sync_to_async(stored_run)(account=cast.prod, requested_by=cast.operator)
    chunk_sink = sink.ChunkSink()
    chunk_sink.acquire()
    try:
        assert chunk_sink._pace == 3600.0
        piece = b"x" * (sink.ROUND_FULL // 4)
        seq = 0
        for _round in range(3):
            rows = []
            for _ in range(4):
                seq += 1
                rows.append((run.pk, seq, 0.0, piece))
            await asyncio.wait_for(chunk_sink.store(rows), 60)  # an hour's pace would never end here
    finally:
        chunk_sink.release()
    stored = await sync_to_async(RunChunk.objects.filter(run=run).count)()
    assert stored == 12
