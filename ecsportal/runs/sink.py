"""Where the runs of one event loop store their transcript and beat their heartbeat.

Group commit: `ChunkSink` gathers the rows and heartbeats that every run on the loop hands in
while a round is in flight and writes them in the next round, on a database thread and
connection of its own: one INSERT (raw `executemany` in one transaction: the ORM's
`bulk_create` cost more to build than the database took to run it), one heartbeat UPDATE and
one SELECT for cancels, however many runs. A failed round fails its callers, who try again
(writer.py); a chunk stored twice stays one row (`ON CONFLICT (run_id, seq) DO NOTHING`),
so a retry after a commit whose answer was lost is harmless.

Rounds are paced: one starts at most every `ROUND_EVERY` seconds. An idle loop's row goes at
once (the last round was long ago); under load the rows of every run gather for the rest of
the interval and go together. Without it, on an idle machine every line was a round of its
own (a thread hop, a transaction, and a wake-up of its run's storer), about a fifth of the
server's CPU in `relay.py`'s 100-run round. Storing is off the viewers' path (publish before
the commit), so the pace costs them nothing; it only delays the trim of the stream and the
heartbeat by at most the interval. A round that already holds `ROUND_FULL` bytes goes at once:
there is nothing to gain by waiting, and a bulk run (one writer hands in at most a megabyte
a round, writer.py) would otherwise be held to ten rounds a second. Only with the in-memory streams (one process): a Redis
stream outlives the runner's process, so after a SIGKILL its viewers would keep what the
database never got for as long as the interval; there rounds go at once, as before, and
what a viewer can hold beyond the transcript stays one round's worth.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TypeVar

from channels.db import database_sync_to_async
from django.db import connections, transaction
from django.utils import timezone

from ecsportal.runs.models import ACTIVE_STATUSES, Run, RunChunk
from ecsportal.runs.streams import MemoryStreams, output_streams

T = TypeVar("T")
Row = tuple[int, int, float, bytes]  # run pk, seq, offset, data
Beat = tuple[datetime | None, str, bool]  # the cancel request (when, by whom), and whether the run is still active
QUIET: Beat = (None, "", True)
ROUND_EVERY = 0.1  # seconds between the starts of two rounds, at the least (see the docstring)
ROUND_FULL = 512 * 1024  # bytes of rows that make a round worth starting at once, paced or not


def _insert_chunks(rows: list[Row]) -> None:
    """One INSERT statement for all rows, in one transaction; rows already stored are skipped."""
    db = RunChunk.objects.db
    connection = connections[db]
    quote = connection.ops.quote_name
    meta = RunChunk._meta
    run, seq, offset, data = (quote(meta.get_field(name).column) for name in ("run", "seq", "offset", "data"))
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({run}, {seq}, {offset}, {data}) VALUES (%s, %s, %s, %s) "  # noqa: S608 (model identifiers; values are parameters)
        f"ON CONFLICT ({run}, {seq}) DO NOTHING"
    )
    with transaction.atomic(using=db), connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _on_own_connection(fn: Callable[..., T], args: tuple) -> T:
    """Run `fn` on the run-database thread; a connection that failed is not reused."""
    try:
        return fn(*args)
    except Exception:
        _close_connections()
        raise
    finally:
        # With DEBUG on, Django keeps each query's SQL with its parameters (up to 9,000 of
        # them, each holding a row's bytes) until the next request resets it, and this
        # thread never serves a request.
        for connection in connections.all(initialized_only=True):
            connection.queries_log.clear()


def _shares_one_thread() -> bool:
    """An in-memory SQLite database (the tests') locks whole tables across connections and
    fails at once rather than wait ("database table is locked"): there the sink's calls go
    through Django's shared thread, one connection at a time, as every other call does."""
    connection = connections["default"]
    return connection.vendor == "sqlite" and connection.is_in_memory_db()


def _close_connections() -> None:
    for connection in connections.all(initialized_only=True):
        with contextlib.suppress(Exception):
            connection.close()


def _heartbeats(beats: dict[int, int]) -> dict[int, Beat]:
    """Heartbeat and `bytes_out` for the active runs among `beats` (pk → bytes out); for each,
    its cancel request, (when, by whom) or (None, ""), and whether it is still active (a run
    ended elsewhere, by the stale sweep say, tells its runner to stop).

    One UPDATE statement run for every run (executemany): an ORM `Case(When…)` over a hundred
    runs cost more to build than the database took to run it. Only active runs are touched,
    so a heartbeat still in flight when the run ends cannot overwrite the final `bytes_out`."""
    connection = connections[Run.objects.db]
    quote = connection.ops.quote_name
    meta = Run._meta
    active = ", ".join(["%s"] * len(ACTIVE_STATUSES))
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {quote(meta.get_field('heartbeat_at').column)} = %s, "  # noqa: S608 (model identifiers; values are parameters)
        f"{quote(meta.get_field('bytes_out').column)} = %s "
        f"WHERE {quote(meta.pk.column)} = %s AND {quote(meta.get_field('status').column)} IN ({active})"
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.executemany(sql, [(now, size, pk, *ACTIVE_STATUSES) for pk, size in beats.items()])
    rows = Run.objects.filter(pk__in=list(beats)).values(
        "pk", "cancel_requested_at", "cancelled_by__username", "status"
    )
    return {
        row["pk"]: (row["cancel_requested_at"], row["cancelled_by__username"] or "", row["status"] in ACTIVE_STATUSES)
        for row in rows
    }


def heartbeat_now(run_pk: int, bytes_out: int) -> Beat:
    """One run's heartbeat on the calling thread (a runner still waiting for its agent)."""
    return _heartbeats({run_pk: bytes_out}).get(run_pk, QUIET)


class ChunkSink:
    """The runs of one event loop store their transcript, and beat their heartbeat, here.

    Group commit: the rows that runs hand in while a write is in flight are stored together,
    in one INSERT, on the next round, and the heartbeats handed in meanwhile go in the same
    round (one UPDATE, one SELECT for cancels, for all of them). Each run still has at most
    one row in flight (its writer waits), and learns when its row is stored.

    Its own thread and connection: the rounds do not go through Django's one shared sync
    thread, where they would queue behind page views, socket checks and every other run's
    steps, and they do not open and close a database connection per call as
    `database_sync_to_async` does (CONN_MAX_AGE 0). One thread, one connection, kept while
    runs are active and closed (thread and all) when the last writer closes.
    """

    def __init__(self) -> None:
        self._rows: list[tuple[list[Row], asyncio.Future[None]]] = []
        self._beats: list[tuple[int, int, asyncio.Future[Beat]]] = []
        self._wake = asyncio.Event()
        self._full = asyncio.Event()  # the rows waiting make a round worth starting now
        self._waiting_bytes = 0
        self._task = asyncio.create_task(self._loop(), name="run-chunk-sink")
        self._executor: ThreadPoolExecutor | None = None
        self._users = 0
        self._pace = ROUND_EVERY if isinstance(output_streams(), MemoryStreams) else 0.0  # see the docstring

    def acquire(self) -> None:
        """A writer starts: keep the thread and its connection."""
        self._users += 1

    def release(self) -> None:
        """A writer ends: the last one closes the connection and lets the thread go."""
        self._users -= 1
        self._shut_down_when_idle()

    def _shut_down_when_idle(self, *, now: bool = False) -> None:
        """Close the thread's connection and let the thread go, once no writer uses it and
        nothing waits to be written (checked again after every round), or `now`."""
        if self._executor is None:
            return
        if not now and (self._users > 0 or self._rows or self._beats):
            return
        executor, self._executor = self._executor, None
        executor.submit(_close_connections)
        executor.shutdown(wait=False)

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` on the sink's database thread."""
        if _shares_one_thread():
            return await database_sync_to_async(_on_own_connection)(fn, args)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecsportal-run-db")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _on_own_connection, fn, args)

    async def store(self, rows: list[Row]) -> None:
        """Store rows in the next round; raises what the round ran into (the caller retries:
        a row stored twice is stored once, the INSERT ignores a (run, seq) already there)."""
        future = asyncio.get_running_loop().create_future()
        self._rows.append((rows, future))
        self._waiting_bytes += sum(len(row[3]) for row in rows)
        if self._waiting_bytes >= ROUND_FULL:
            self._full.set()
        self._wake.set()
        await future

    async def heartbeat(self, run_pk: int, bytes_out: int) -> Beat:
        """Write the run's heartbeat and `bytes_out`; its cancel request (time, by whom) if any,
        and whether it is still active."""
        future: asyncio.Future[Beat] = asyncio.get_running_loop().create_future()
        self._beats.append((run_pk, bytes_out, future))
        self._wake.set()
        return await future

    async def _loop(self) -> None:
        try:
            await self._rounds()
        finally:  # the loop is ending (cancelled): its connection goes too
            self._shut_down_when_idle(now=True)

    async def _rounds(self) -> None:
        loop = asyncio.get_running_loop()
        last = float("-inf")  # loop time the last round started
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._rows or self._beats:
                wait = last + self._pace - loop.time()
                if wait > 0 and not self._full.is_set():  # busy: what the others hand in joins this round
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._full.wait(), wait)
                last = loop.time()
                rows, self._rows = self._rows, []
                self._waiting_bytes = 0
                self._full.clear()
                beats, self._beats = self._beats, []
                try:
                    row_error, beat_error, answers = await self.call(
                        _write_round, [row for batch, _ in rows for row in batch], {pk: n for pk, n, _ in beats}
                    )
                except Exception as exc:
                    row_error = beat_error = exc
                    answers = {}
                for _, future in rows:
                    if future.done():
                        continue
                    if row_error is None:
                        future.set_result(None)
                    else:  # each run's writer sees the failure and tries again later
                        future.set_exception(row_error)
                for pk, _, future in beats:
                    if future.done():
                        continue
                    if beat_error is None:
                        future.set_result(answers.get(pk, QUIET))
                    else:
                        future.set_exception(beat_error)
                del rows  # the chunks' bytes are the writers' to drop now
            self._shut_down_when_idle()


def _write_round(rows: list[Row], beats: dict[int, int]) -> tuple[Exception | None, Exception | None, dict[int, Beat]]:
    """One round on the sink's thread: the rows, then the heartbeats; each part fails alone."""
    row_error = beat_error = None
    answers: dict[int, Beat] = {}
    if rows:
        try:
            _insert_chunks(rows)
        except Exception as exc:
            row_error = exc
    if beats:
        try:
            answers = _heartbeats(beats)
        except Exception as exc:
            beat_error = exc
    if row_error is not None or beat_error is not None:
        _close_connections()  # a connection that failed is not reused
    return row_error, beat_error, answers


_sinks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ChunkSink] = weakref.WeakKeyDictionary()


def chunk_sink() -> ChunkSink:
    loop = asyncio.get_running_loop()
    sink = _sinks.get(loop)
    if sink is None or sink._task.done():
        sink = _sinks[loop] = ChunkSink()
    return sink
