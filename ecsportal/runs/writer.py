"""A run's output on its way to the database and its viewers.

    SsmClient chunks → ExitMarker.feed → TranscriptWriter.append
        writer task: take what is pending (≤ 256 KB) → one RunChunk(seq) through the sink
                     → group_send "run-<pk>"

One write in flight per run: whatever arrives meanwhile becomes the next row, so an idle run
writes at once and a busy one writes big rows. A busy run is also held to at most one row
(and one message to its viewers) per `ECSPORTAL_RUN_COALESCE_MS`: an idle run's output goes
out at once, a busy run's waits for the rest of that interval and goes out together.

**The command outlives the plumbing.** A row the database does not take is kept and tried
again with backoff (0.2 s doubling to 5 s) for up to `ECSPORTAL_RUN_STORE_RETRY_SECONDS`,
while the session stays open; what arrives meanwhile waits in the pending buffer, and past
`MAX_PENDING` the reader waits too (the SSM client then holds the agent back through TCP).
A message the channel layer does not take is not retried here: it is in the database
already, and the viewers' consumers fill any gap in `seq` from there (and ask for the status
when they hear nothing), so a Redis outage costs viewers latency, never bytes.

**The budget.** Past `ECSPORTAL_RUN_OUTPUT_BUDGET_BYTES` of output the rest is neither stored
nor shown: a note in the transcript says so once, the run goes on to its exit code, and its
end reason says how much was cut.
"""

from __future__ import annotations

import asyncio
import logging

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import Error as DatabaseError

from ecsportal.runs.sink import ChunkSink, chunk_sink

logger = logging.getLogger(__name__)

MAX_CHUNK = 256 * 1024  # largest RunChunk row (and channel-layer message)
MAX_PENDING = 4 * 1024 * 1024  # output waiting for the writer before the reader waits too
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
    """Coalesces output into RunChunk rows, one write in flight; stores each (retrying), then publishes it."""

    def __init__(self, run_pk: int, *, started: float, first_seq: int = 0) -> None:
        self.run_pk = run_pk
        self.group = f"run-{run_pk}"
        self.started = started
        self.seq = first_seq
        self.written = 0  # bytes stored
        self.accepted = 0  # bytes of output taken within the budget
        self.cut = 0  # bytes of output past the budget, neither stored nor shown
        self.budget = int(settings.ECSPORTAL_RUN_OUTPUT_BUDGET_BYTES)
        self.coalesce = float(settings.ECSPORTAL_RUN_COALESCE_MS) / 1000
        self.retry_for = float(settings.ECSPORTAL_RUN_STORE_RETRY_SECONDS)
        self.last_output_at = started  # loop time of the last output (the watchdog's silence limit)
        self._pending = bytearray()
        self._pending_at = 0.0
        self._sent_at = float("-inf")
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._closing = False
        self._layer = get_channel_layer()
        self.sink: ChunkSink = chunk_sink()
        self.sink.acquire()
        self._task = asyncio.create_task(self._loop(), name=f"run-{run_pk}-writer")

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

    def _add(self, data: bytes, loop: asyncio.AbstractEventLoop) -> None:
        if not self._pending:
            self._pending_at = loop.time() - self.started
        self._pending += data
        self._wake.set()
        if len(self._pending) > MAX_PENDING:
            self._space.clear()

    async def room(self) -> None:
        """Wait while too much output is waiting to be written (the SSM client then holds the agent).
        A writer that failed stops the reader here, instead of letting output pile up unwritten."""
        if self._task.done() and not self._task.cancelled() and self._task.exception() is not None:
            raise self._task.exception()
        if not self._space.is_set() and not self._task.done():
            await self._space.wait()

    async def _loop(self) -> None:
        try:
            await self._write_all()
        finally:
            self.sink.release()

    async def _write_all(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                wait = self._sent_at + self.coalesce - loop.time()
                if wait > 0 and not self._closing:  # busy: the rest of the interval gathers more
                    await asyncio.sleep(wait)
                size = min(len(self._pending), MAX_CHUNK)
                data = bytes(self._pending[:size])
                offset = round(self._pending_at, 6)
                await self._store(self.seq + 1, offset, data)
                del self._pending[:size]  # only now: a row the database refused is tried again
                self._pending_at = loop.time() - self.started
                self.seq += 1
                self.written += size
                self._sent_at = loop.time()
                await self._publish(self.seq, data)
                del data  # held now only by the sockets' queues that have yet to send it
                if len(self._pending) <= MAX_PENDING // 2:
                    self._space.set()
            self._space.set()
            if self._closing:
                return

    async def _store(self, seq: int, offset: float, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        failing_since: float | None = None
        delay = FIRST_RETRY
        while True:
            try:
                await self.sink.store(self.run_pk, seq, offset, data)
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

    async def _publish(self, seq: int, data: bytes) -> None:
        if self._layer is None:
            return
        try:
            await self._layer.group_send(self.group, {"type": "run.output", "seq": seq, "data": data})
        except Exception as exc:  # stored already: the viewers' consumers read it from the database
            logger.warning(
                "run %s: publishing chunk %s failed (viewers read it from the database): %s", self.run_pk, seq, exc
            )

    async def close(self) -> None:
        """Write and publish everything appended so far; raise what the writer ran into."""
        self._closing = True
        self._wake.set()
        await self._task
