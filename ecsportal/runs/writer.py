"""A run's output on its way to its viewers and the database: publish first, store behind.

    SsmClient chunks → ExitMarker.feed → TranscriptWriter.append → pending
        publisher: take what is pending (≤ 256 KB) as chunk `seq` → the run's output stream
                   (streams.py) → this loop's viewers rung directly (`Doorbells`), and with
                   Redis the doorbell `run.output {seq}` to group "run-<pk>" for the others
        storer:    the chunks published and not yet stored → RunChunk rows through the sink
                   (group commit), retried until stored

**Publish before the commit.** Viewers get a chunk as soon as it is in the stream; storing
it is off that path. A chunk leaves the stream only once its row has committed, so a viewer
finds every chunk in the one or the other.

**Adaptive coalescing.** A token bucket per run: a chunk costs a token, tokens come back one
per `ECSPORTAL_RUN_COALESCE_MS` up to `BURST`. An idle run (a full bucket) publishes its
output at once, and so does a run printing at up to one chunk per interval however its
timing jitters; a busy run, once its bucket is empty, publishes at most once per interval,
and what arrives meanwhile goes out together, as one chunk. (A plain "at most once per
interval" made a run printing close to that rate wait most of an interval for each line.)

**Published from the reader's step.** In one process (in-memory streams, no Redis doorbell)
output that finds the publisher idle and a token in the bucket is published by `append`
itself: the stream append and the doorbells are plain calls, so waking the publisher task
for it was one more loop step per chunk for nothing. Anything else (a busy run, Redis) goes
through the publisher as before.

**The command outlives the plumbing.** Rows the database does not take stay in the storer's
list and are tried again with backoff (0.2 s doubling to 5 s) for up to
`ECSPORTAL_RUN_STORE_RETRY_SECONDS`, while the session stays open and viewers still get the
output live from the stream. Past `MAX_UNSTORED` bytes not yet stored the reader waits (the
SSM client then holds the agent back through TCP). A stream append or doorbell that fails
(Redis away) is logged and not retried: the row is stored regardless, and viewers read it
from the database on the next doorbell, or when they ask for the status.

**The budget.** Past `ECSPORTAL_RUN_OUTPUT_BUDGET_BYTES` of output the rest is neither stored
nor shown: a note in the transcript says so once, the run goes on to its exit code, and its
end reason says how much was cut.
"""

from __future__ import annotations

import asyncio
import logging

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.db import Error as DatabaseError

from ecsportal.runs.sink import ChunkSink, Row, chunk_sink
from ecsportal.runs.streams import MemoryStreams, doorbells, output_streams

logger = logging.getLogger(__name__)

MAX_CHUNK = 256 * 1024  # largest chunk (RunChunk row, stream entry)
MAX_UNSTORED = 4 * 1024 * 1024  # output not yet stored before the reader waits too
STORE_BATCH = 1024 * 1024  # bytes of one run's rows handed to one round
BURST = 4  # chunks a run may publish back to back before coalescing holds it to the interval
FIRST_RETRY = 0.2
LAST_RETRY = 5.0


class StorageLost(Exception):
    """The database did not take the run's output for longer than the retry limit."""


def budget_note(budget: int) -> bytes:
    return (
        f"\r\n[ecsportal: this run's output passed its budget of {_size(budget)}; the rest is "
        "neither stored nor shown. The command goes on to its exit code.]\r\n"
    ).encode()


def _size(n: int) -> str:
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MB"
    return f"{n:,} bytes"


class TranscriptWriter:
    """A run's publisher and storer (see the module's docstring)."""

    def __init__(self, run_pk: int, *, started: float, first_seq: int = 0) -> None:
        self.run_pk = run_pk
        self.group = f"run-{run_pk}"
        self.started = started
        self.seq = first_seq  # last chunk published
        self.stored_seq = first_seq  # last chunk stored
        self.written = 0  # bytes stored
        self.accepted = 0  # bytes of output taken within the budget
        self.cut = 0  # bytes of output past the budget, neither stored nor shown
        self.budget = int(settings.ECSPORTAL_RUN_OUTPUT_BUDGET_BYTES)
        self.coalesce = float(settings.ECSPORTAL_RUN_COALESCE_MS) / 1000
        self.retry_for = float(settings.ECSPORTAL_RUN_STORE_RETRY_SECONDS)
        self.last_output_at = started  # loop time of the last output (the watchdog's silence limit)
        self._pending = bytearray()
        self._pending_at = 0.0
        self._tokens = float(BURST)  # the coalescing bucket (see the module's docstring)
        self._tokens_at = 0.0
        self._echo_due = False  # a keystroke's echo is owed one message at once
        self._echo = asyncio.Event()
        self._unstored: list[Row] = []
        self._unstored_bytes = 0
        self._wake = asyncio.Event()
        self._store_wake = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._closing = False
        self._published_all = False
        self._layer = get_channel_layer()
        # In memory, every viewer is on this loop and the local doorbell reaches it: no
        # channel-layer message per chunk. Through Redis, viewers on other processes need one.
        self._remote = self._layer is not None and not isinstance(self._layer, InMemoryChannelLayer)
        self.bells = doorbells()
        self.streams = output_streams()
        # Publishing is plain calls on this loop: `append` may publish itself (module docstring).
        self._direct = isinstance(self.streams, MemoryStreams) and not self._remote
        self._idle = False  # the publisher waits for output, nothing pending
        self.sink: ChunkSink = chunk_sink()
        self.sink.acquire()
        self._publisher = asyncio.create_task(self._publish_all(), name=f"run-{run_pk}-publisher")
        self._storer = asyncio.create_task(self._store_all(), name=f"run-{run_pk}-storer")

    # -- the reader's side ----------------------------------------------------------------------

    def append(self, data: bytes) -> None:
        if not data:
            return
        loop = asyncio.get_running_loop()
        self.last_output_at = loop.time()
        room = self.budget - self.accepted
        if len(data) > room:
            if self.cut == 0:
                self._add(data[: max(room, 0)] + budget_note(self.budget), loop)
                self.accepted += max(room, 0)
            self.cut += len(data) - max(room, 0)
            return
        self.accepted += len(data)
        self._add(data, loop)

    def expect_echo(self) -> None:
        """A person just typed (an interactive shell): the next output goes out at once, a token
        the bucket grants beyond its rate (and a publisher waiting out an interval wakes), so an
        echo never waits for coalescing. A flood nobody types into stays coalesced; one typing
        into a flood gets one message at once per keystroke."""
        self._echo_due = True
        self._echo.set()

    def _add(self, data: bytes, loop: asyncio.AbstractEventLoop) -> None:
        if self._idle and self._direct and not self._pending and len(data) <= MAX_CHUNK:
            now = loop.time()
            if self._token_wait(now) == 0:  # the publisher would send it at once: send it here
                self._take_token()
                self._publish_now(bytes(data), round(now - self.started, 6))
                self._check_space()
                return
        if not self._pending:
            self._pending_at = loop.time() - self.started
        self._pending += data
        self._wake.set()
        self._check_space()

    def _check_space(self) -> None:
        if len(self._pending) + self._unstored_bytes > MAX_UNSTORED:
            self._space.clear()
        elif len(self._pending) + self._unstored_bytes <= MAX_UNSTORED // 2:
            self._space.set()

    async def room(self) -> None:
        """Wait while too much output is not yet stored (the SSM client then holds the agent).
        A storer that gave up stops the reader here, instead of letting output pile up."""
        for task in (self._storer, self._publisher):
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()
        if not self._space.is_set():
            space = asyncio.ensure_future(self._space.wait())
            try:
                await asyncio.wait([space, self._storer], return_when=asyncio.FIRST_COMPLETED)
            finally:
                space.cancel()
            if self._storer.done() and not self._storer.cancelled() and self._storer.exception() is not None:
                raise self._storer.exception()

    # -- the publisher ----------------------------------------------------------------------------

    async def _publish_all(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._idle = not self._closing
            await self._wake.wait()
            self._idle = False
            self._wake.clear()
            while self._pending:
                wait = self._token_wait(loop.time())
                if wait > 0 and not self._closing:  # busy: the rest of the interval gathers more
                    self._echo.clear()
                    try:  # unless someone types meanwhile
                        await asyncio.wait_for(self._echo.wait(), wait)
                    except TimeoutError:
                        pass
                self._token_wait(loop.time())
                self._take_token()
                size = min(len(self._pending), MAX_CHUNK)
                data = bytes(self._pending[:size])
                del self._pending[:size]
                offset = round(self._pending_at, 6)
                self._pending_at = loop.time() - self.started
                self.seq += 1
                self._unstored.append((self.run_pk, self.seq, offset, data))
                self._unstored_bytes += size
                self._store_wake.set()
                await self._publish(self.seq, data)
            if self._closing:
                self._published_all = True
                self._store_wake.set()
                return

    def _token_wait(self, now: float) -> float:
        """Refill the bucket up to `now`; how long until it holds a whole token (0: it does)."""
        if self.coalesce <= 0:
            self._tokens = float(BURST)
            return 0.0
        self._tokens = min(float(BURST), self._tokens + (now - self._tokens_at) / self.coalesce)
        self._tokens_at = now
        return 0.0 if self._echo_due else max(0.0, (1 - self._tokens) * self.coalesce)

    def _take_token(self) -> None:
        if self._echo_due:  # the echo's message is granted, beyond the rate
            self._echo_due = False
            self._tokens = max(self._tokens, 1.0)
        self._tokens -= 1

    def _publish_now(self, data: bytes, offset: float) -> None:
        """Publish `data` as the next chunk from the caller's step (in-memory streams only)."""
        self.seq += 1
        self._unstored.append((self.run_pk, self.seq, offset, data))
        self._unstored_bytes += len(data)
        self._store_wake.set()
        try:
            self.streams.append_now(self.run_pk, self.seq, data, stored=self.stored_seq)
            self.bells.ring(self.run_pk, self.seq)
        except Exception as exc:  # a viewer's doorbell failing must not fail the run: it reads the database
            logger.warning(
                "run %s: publishing chunk %s failed (viewers read it from the database): %s", self.run_pk, self.seq, exc
            )

    async def _publish(self, seq: int, data: bytes) -> None:
        try:
            await self.streams.append(self.run_pk, seq, data, stored=self.stored_seq)
            self.bells.ring(self.run_pk, seq)
            if self._remote:
                await self._layer.group_send(self.group, {"type": "run.output", "seq": seq})
        except Exception as exc:  # the row is stored regardless: viewers read it from the database
            logger.warning(
                "run %s: publishing chunk %s failed (viewers read it from the database): %s", self.run_pk, seq, exc
            )

    # -- the storer --------------------------------------------------------------------------------

    async def _store_all(self) -> None:
        try:
            while True:
                await self._store_wake.wait()
                self._store_wake.clear()
                while self._unstored:
                    batch, size = [], 0
                    for row in self._unstored:
                        if batch and size + len(row[3]) > STORE_BATCH:
                            break
                        batch.append(row)
                        size += len(row[3])
                    await self._store(batch)
                    del self._unstored[: len(batch)]  # only now: rows the database refused are tried again
                    self._unstored_bytes -= size
                    self.written += size
                    self.stored_seq = batch[-1][1]
                    self._check_space()
                if self._published_all:
                    return
        finally:
            self.sink.release()

    async def _store(self, rows: list[Row]) -> None:
        loop = asyncio.get_running_loop()
        failing_since: float | None = None
        delay = FIRST_RETRY
        while True:
            try:
                await self.sink.store(rows)
            except DatabaseError as exc:
                now = loop.time()
                if failing_since is None:
                    failing_since = now
                    logger.warning("run %s: storing its output failed, retrying: %s", self.run_pk, exc)
                if now - failing_since >= self.retry_for:
                    raise StorageLost(
                        f"the database did not take the output for {self.retry_for:g} s ({type(exc).__name__}: {exc})"
                    ) from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, LAST_RETRY)
                continue
            if failing_since is not None:
                logger.info("run %s: its output is stored again after %.1f s", self.run_pk, loop.time() - failing_since)
            return

    # -- the end -------------------------------------------------------------------------------------

    async def flush(self, timeout: float) -> None:
        """On the way out (the process is stopping): store what was appended, for at most `timeout` s."""
        try:
            await asyncio.wait_for(asyncio.shield(self.close()), timeout)
        except Exception as exc:
            logger.warning("run %s: its last output could not all be stored: %s", self.run_pk, exc)

    async def abort(self) -> None:
        """Stop publishing and storing (the run has ended); what is in the database stays."""
        self._idle = False
        for task in (self._publisher, self._storer):
            task.cancel()
        await asyncio.gather(self._publisher, self._storer, return_exceptions=True)
        try:
            await self.streams.close(self.run_pk)
        except Exception as exc:
            logger.warning("run %s: dropping its output stream failed: %s", self.run_pk, exc)

    async def close(self) -> None:
        """Publish and store everything appended so far; raise what the storer ran into."""
        self._closing = True
        self._idle = False
        self._wake.set()
        last = None
        try:
            await self._publisher
            await self._storer
            last = self.stored_seq  # every chunk published and stored: viewers may be told it is the last
        finally:
            try:
                await self.streams.close(self.run_pk, last=last)  # all stored: late viewers read the database
            except Exception as exc:
                logger.warning("run %s: dropping its output stream failed: %s", self.run_pk, exc)
