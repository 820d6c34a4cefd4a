"""The runner: one coroutine, `execute_run(run_pk)`, owns a run's ECS Exec session.

Both dispatch modes run it (dispatcher.py). It moves the run QUEUED → CONNECTING → RUNNING →
an end state, each by a conditional UPDATE; calls ExecuteCommand through the AWS layer; opens
the data channel with `SsmClient`, sends the terminal size first, and streams the output:

    SsmClient → ExitMarker (removes the exit trailer) → TranscriptWriter → RunChunk rows
                                                                        → group "run-<pk>"

The writer coalesces: whatever arrived while the previous batch was being written becomes ONE
RunChunk row, and only then is it published, so anything a viewer receives live is already in
the database. One write in flight per run; an idle run writes at once. The rows of all runs
on the loop that are ready at the same moment go in one INSERT (`ChunkSink`, group commit), so
a hundred busy runs cost a few transactions per round, not a hundred.

A watchdog beside it writes the heartbeat (and `bytes_out`), learns about cancels, enforces
the time limit and checks with DescribeTasks that the task is still RUNNING.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import shlex
import socket
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone

from ecsportal.aws import ecs, records
from ecsportal.aws.errors import AccessDenied, AwsError, ExecNotEnabled, TargetNotConnected
from ecsportal.logs import with_run_id
from ecsportal.runs import dispatcher
from ecsportal.runs.models import ACTIVE_STATUSES, Run, RunChunk, RunMode, RunStatus
from ecsportal.runs.selectors import run_real_command
from ecsportal.runs.services import run_end, run_move, run_started
from ecsportal.ssm.client import SsmClient
from ecsportal.ssm.session import KMS_UNSUPPORTED, EndKind, SessionEnded

logger = logging.getLogger(__name__)

RUNNER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
MAX_CHUNK = 256 * 1024  # largest RunChunk row (and channel-layer message)
MAX_PENDING = 4 * 1024 * 1024  # output waiting for the writer before the reader waits too
T = TypeVar("T")


# -- the exit marker -----------------------------------------------------------------------------


class ExitMarker:
    """Wraps a shell command so it reports its exit code, and removes that report from the output.

    The command runs as ``/bin/sh -c '<EXIT trap>\\n<command>'``; the trap prints
    ``\\x1e ecsportal-exit:<32 random hex>=<code>`` as the shell exits (also after `exit 3`).
    The marker's token is printed as two halves, so its text never appears in the command
    (nor in a process listing as one string). Only the marker at the very end of the output
    counts: another run's marker, a forged one or this one followed by more output is kept
    as output and changes nothing. Only trailing bytes that could begin the marker are held
    back, so output is not delayed otherwise.
    """

    PREFIX = b"\x1eecsportal-exit:"

    def __init__(self, token: str | None = None) -> None:
        self.token = token or secrets.token_hex(16)
        self.marker = self.PREFIX + self.token.encode()
        self._full = re.compile(re.escape(self.marker) + rb"=(\d{1,3})\r*\n")
        self._partial = re.compile(re.escape(self.marker) + rb"(=\d{0,3}\r*)?")
        self._held = bytearray()

    def wrap(self, command: str) -> str:
        half = len(self.token) // 2
        a, b = self.token[:half], self.token[half:]
        trap = f'trap \'ecsportal_rc=$?; printf "\\036ecsportal-exit:%s%s=%d\\n" {a} {b} "$ecsportal_rc"\' EXIT'
        return "/bin/sh -c " + shlex.quote(f"{trap}\n{command}")

    def feed(self, data: bytes) -> bytes:
        """Add output; return what can be shown now."""
        held = self._held
        held += data
        out = bytearray()
        while True:
            at = held.find(self.marker)
            if at < 0:
                break
            out += held[:at]
            del held[:at]
            full = self._full.match(held)
            if full:
                if full.end() == len(held):
                    return bytes(out)  # a complete trailer at the end: hold it
                out += held[: full.end()]  # more output after it: it was not the end
                del held[: full.end()]
                continue
            if self._partial.fullmatch(held):
                return bytes(out)  # the trailer may still be arriving
            out += held[: len(self.marker)]
            del held[: len(self.marker)]
        start = held.rfind(self.PREFIX[:1], max(0, len(held) - len(self.marker) + 1))
        if start >= 0 and self.marker.startswith(bytes(held[start:])):
            out += held[:start]
            del held[:start]
        else:
            out += held
            held.clear()
        return bytes(out)

    def finish(self) -> tuple[bytes, int | None]:
        """At the end of the session: the output still held and the exit code (None if unknown)."""
        full = self._full.fullmatch(self._held)
        code = int(full.group(1)) if full else None
        rest = b"" if full else bytes(self._held)
        self._held.clear()
        return rest, code


# -- the transcript writer --------------------------------------------------------------------------


def _insert_chunks(rows: list[RunChunk]) -> None:
    RunChunk.objects.bulk_create(rows)


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
        self._rows: list[tuple[RunChunk, asyncio.Future[None]]] = []
        self._beats: list[tuple[int, int, asyncio.Future[Beat]]] = []
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name="run-chunk-sink")
        self._executor: ThreadPoolExecutor | None = None
        self._users = 0

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

    async def store(self, run_pk: int, seq: int, offset: float, data: bytes) -> None:
        future = asyncio.get_running_loop().create_future()
        self._rows.append((RunChunk(run_id=run_pk, seq=seq, offset=offset, data=data), future))
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
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._rows or self._beats:
                rows, self._rows = self._rows, []
                beats, self._beats = self._beats, []
                try:
                    row_error, beat_error, answers = await self.call(
                        _write_round, [row for row, _ in rows], {pk: n for pk, n, _ in beats}
                    )
                except Exception as exc:
                    row_error = beat_error = exc
                    answers = {}
                for _, future in rows:
                    if future.done():
                        continue
                    if row_error is None:
                        future.set_result(None)
                    else:  # each run's writer sees the failure and ends its run
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


def _write_round(
    rows: list[RunChunk], beats: dict[int, int]
) -> tuple[Exception | None, Exception | None, dict[int, Beat]]:
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


class TranscriptWriter:
    """Coalesces output into RunChunk rows, one write in flight, and publishes each after it is stored."""

    def __init__(self, run_pk: int, *, started: float, first_seq: int = 0) -> None:
        self.run_pk = run_pk
        self.group = f"run-{run_pk}"
        self.started = started
        self.seq = first_seq
        self.written = 0
        self._pending = bytearray()
        self._pending_at = 0.0
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._closing = False
        self._layer = get_channel_layer()
        self.sink = chunk_sink()
        self.sink.acquire()
        self._task = asyncio.create_task(self._loop(), name=f"run-{run_pk}-writer")

    def append(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._pending_at = asyncio.get_running_loop().time() - self.started
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
                data = bytes(self._pending[:MAX_CHUNK])
                del self._pending[:MAX_CHUNK]
                offset = self._pending_at
                self._pending_at = loop.time() - self.started
                self.seq += 1
                await self.sink.store(self.run_pk, self.seq, round(offset, 6), data)
                self.written += len(data)
                if self._layer is not None:  # retried through a Redis restart; stored already either way
                    await dispatcher.publish(self.group, {"type": "run.output", "seq": self.seq, "data": data})
                del data  # held now only by the sockets' queues that have yet to send it
                if len(self._pending) <= MAX_PENDING // 2:
                    self._space.set()
            self._space.set()
            if self._closing:
                return

    async def close(self) -> None:
        """Write and publish everything appended so far; raise what the writer ran into."""
        self._closing = True
        self._wake.set()
        await self._task


# -- the database steps ------------------------------------------------------------------------------


@dataclass
class Target:
    run: Run
    config: object
    command: str


def _load(run_pk: int) -> Target | None:
    run = Run.objects.select_related("account").filter(pk=run_pk).first()
    if run is None or run.status != RunStatus.QUEUED:
        return None
    return Target(run=run, config=run.account.aws_config(), command=run_real_command(run=run))


Beat = tuple[datetime | None, str, bool]  # the cancel request (when, by whom), and whether the run is still active
QUIET: Beat = (None, "", True)


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


def _heartbeat(run_pk: int, bytes_out: int) -> Beat:
    return _heartbeats({run_pk: bytes_out}).get(run_pk, QUIET)


def _aws(fn):  # noqa: ANN001, ANN202
    """AWS calls run in the default thread pool, not the one thread Django's database calls share:
    boto3 clients are thread-safe, and a slow AWS answer must not hold up every run's writes."""
    return sync_to_async(fn, thread_sensitive=False)


def _describe(target: Target, run: Run) -> records.Task | None:
    found = ecs.describe_tasks(target.config, run.region, run.cluster, [run.task_arn], role_arn=run.role_arn or None)
    return next((t for t in found if t.arn == run.task_arn), None)


def _status_message(run_pk: int) -> dict | None:
    from ecsportal.runs.services import status_payload

    run = Run.objects.filter(pk=run_pk).first()
    return None if run is None else {"type": "run.status", "status": status_payload(run)}


# -- errors in words ------------------------------------------------------------------------------------


def explain_exec_error(exc: AwsError, *, run: Run, task: records.Task | None) -> str:
    """ExecuteCommand's refusals as a person can act on them."""
    cluster = run.cluster_name
    if isinstance(exc, ExecNotEnabled):
        service = task.service_name if task else ""
        if service:
            fix = (
                f"Enable it on the service and replace its tasks: aws ecs update-service --cluster {cluster} "
                f"--service {service} --enable-execute-command --force-new-deployment"
            )
        else:
            fix = "This task is not part of a service: run it again with aws ecs run-task … --enable-execute-command"
        return (
            "ECS Exec is not enabled for this task (it cannot be switched on for a running task). "
            f"{fix}. Then run the command in a new task. AWS said: {_aws_said(exc)}"
        )
    if isinstance(exc, TargetNotConnected):
        return (
            f"The SSM agent in container {run.container} is not connected. Check that the task role "
            "allows ssmmessages:CreateControlChannel, CreateDataChannel, OpenControlChannel and "
            "OpenDataChannel, and that the task has a network path to the ssmmessages endpoint "
            "(a NAT gateway, a public IP, or a VPC endpoint for ssmmessages). A task that has just "
            f"started needs up to a minute; this one did not connect in time. AWS said: {_aws_said(exc)}"
        )
    if isinstance(exc, AccessDenied):
        role = run.role_arn or "the account's role"
        return (
            f"Access denied: {role} may not call ecs:ExecuteCommand on {run.task_arn}. Its IAM policy must "
            f"allow ecs:ExecuteCommand on the task and on the cluster {cluster}, and its conditions must "
            f"match (ecs:cluster, ecs:container-name = {run.container}, aws:ResourceTag/… on the task). "
            f"AWS said: {_aws_said(exc)}"
        )
    return str(exc)


def _aws_said(exc: AwsError) -> str:
    text = str(exc)
    return text.split("AWS said: ", 1)[1] if "AWS said: " in text else text


def explain_end(end: SessionEnded | None) -> str:
    if end is None:
        return "Channel lost: the session ended without saying why."
    if end.kind == EndKind.ERROR and KMS_UNSUPPORTED in end.message:
        return (
            "KMS-encrypted sessions are not supported: the cluster's ECS Exec configuration names a "
            "KMS key. Use the AWS CLI with the Session Manager plugin for this cluster, or remove the "
            "KMS key from its executeCommandConfiguration."
        )
    if end.kind == EndKind.ERROR:
        return f"The session failed: {end.message}."
    return f"Channel lost: {end.message}."


# -- the coroutine ----------------------------------------------------------------------------------------


@with_run_id  # every record the runner writes (its threads' too) carries the run's ID
async def execute_run(run_pk: int) -> None:
    """Run a queued run to its end; never raises, never leaves the run active."""
    runner = _Runner(run_pk)
    try:
        await runner.run()
    except asyncio.CancelledError:
        # Cancelled: the process is stopping past its drain deadline (or its loop is closing).
        # What was received is stored first, so the transcript and the byte count agree.
        await runner.store_what_was_received()
        reason = dispatcher.stopping_reason() or "Runner lost: the server stopped while the command was running."
        await _end_quietly(run_pk, reason, runner)
        raise
    except Exception as exc:
        logger.exception("run %s: the runner failed", run_pk)
        await _end_quietly(run_pk, f"The portal's runner failed: {type(exc).__name__}: {exc}", runner)
    finally:
        dispatcher.drop_cancel_event(run_pk)


async def _end_quietly(run_pk: int, reason: str, runner: _Runner) -> None:
    try:
        await _record_end(run_pk=run_pk, status=RunStatus.ERROR, end_reason=reason, bytes_out=runner.bytes_out)
    except Exception:
        logger.exception("run %s: could not record the runner's failure", run_pk)


# The end a runner saw is the true one; the sweep's "runner lost" is a guess for runners that
# are gone. So an end that meets a database restart is written again, for about 30 s.
END_RETRIES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


async def _record_end(**fields: object) -> bool:
    """`run_end` (a conditional UPDATE: writing it twice changes nothing), tried again while
    the database cannot be reached."""
    for wait in (*END_RETRIES, None):
        try:
            return await database_sync_to_async(run_end)(**fields)
        except DatabaseError as exc:
            if wait is None:
                raise
            logger.warning("run %s: recording its end failed (%s); again in %g s", fields.get("run_pk"), exc, wait)
            await asyncio.sleep(wait)
    return False


class _Runner:
    def __init__(self, run_pk: int) -> None:
        self.pk = run_pk
        self.client: SsmClient | None = None
        self.writer: TranscriptWriter | None = None
        self.stop: tuple[str, str] | None = None  # (status, end reason) chosen by the watchdog
        self.cancel_by = ""
        self.task: records.Task | None = None
        self.cancel_event = dispatcher.cancel_event(run_pk)

    @property
    def bytes_out(self) -> int | None:
        return self.writer.written if self.writer else None

    async def store_what_was_received(self) -> None:
        if self.writer is None:
            return
        try:
            await asyncio.wait_for(self.writer.close(), 10)
        except Exception as exc:
            logger.warning("run %s: the output received last could not be stored: %s", self.pk, exc)

    async def publish_status(self) -> None:
        message = await database_sync_to_async(_status_message)(self.pk)
        if message is not None:
            await dispatcher.publish(f"run-{self.pk}", message)

    async def end(self, status: str, reason: str, exit_code: int | None = None) -> None:
        await _record_end(
            run_pk=self.pk, status=status, end_reason=reason, exit_code=exit_code, bytes_out=self.bytes_out
        )

    async def run(self) -> None:
        target = await database_sync_to_async(_load)(self.pk)
        if target is None:
            return
        run = target.run
        moved = await database_sync_to_async(run_move)(
            run_pk=self.pk,
            from_statuses=(RunStatus.QUEUED,),
            status=RunStatus.CONNECTING,
            runner_id=RUNNER_ID,
            heartbeat_at=timezone.now(),
        )
        if not moved:
            return
        await self.publish_status()
        marker = ExitMarker() if run.mode == RunMode.SHELL else None
        command = marker.wrap(target.command) if marker else target.command
        session = await self.open_session(run, target, command)
        if session is None:
            return
        self.client = SsmClient(
            session.stream_url,
            session.token_value,
            open_timeout=10,
            idle_timeout=settings.ECSPORTAL_RUN_IDLE_SECONDS,
        )
        await self.client.open()
        if self.client.end is not None:
            await self.end(RunStatus.ERROR, explain_end(self.client.end))
            return
        await self.client.resize(run.cols, run.rows)
        loop = asyncio.get_running_loop()
        started = loop.time()
        moved = await database_sync_to_async(run_started)(run_pk=self.pk, session_id=session.session_id)
        if not moved:  # ended meanwhile (a stale-runner sweep): give the session back
            await self.client.close()
            return
        await self.publish_status()
        self.writer = TranscriptWriter(self.pk, started=started)
        watchdog = asyncio.create_task(self.watch(run, target, started), name=f"run-{self.pk}-watchdog")
        try:
            async for chunk in self.client:
                self.writer.append(marker.feed(chunk) if marker else chunk)
                await self.writer.room()
        finally:
            watchdog.cancel()
            # Whatever the watchdog ended with (cancelled, or an error), the session is closed.
            await asyncio.gather(watchdog, return_exceptions=True)
            await self.client.close()
        exit_code = None
        if marker:
            rest, exit_code = marker.finish()
            self.writer.append(rest)
        await self.writer.close()
        await self.finish(run, exit_code, self.client.end)

    async def finish(self, run: Run, exit_code: int | None, end: SessionEnded | None) -> None:
        if self.stop is not None:
            status, reason = self.stop
            if status == RunStatus.CANCELLED and exit_code is not None:
                reason = f"{reason} The command exited with {exit_code}."
            await self.end(status, reason, exit_code)
            return
        if end is not None and end.kind == EndKind.NORMAL:
            if run.mode == RunMode.RAW:
                await self.end(
                    RunStatus.SUCCEEDED,
                    "The session ended normally. Raw mode reports no exit code: the command ran without a shell.",
                )
            elif exit_code is None:
                await self.end(
                    RunStatus.ERROR,
                    "Exit code unknown: the session ended without the exit marker (the shell was killed, "
                    "or the command replaced it with exec).",
                )
            else:
                status = RunStatus.SUCCEEDED if exit_code == 0 else RunStatus.FAILED
                await self.end(status, f"Exited with {exit_code}.", exit_code)
            return
        await self.end(RunStatus.ERROR, explain_end(end), exit_code)

    async def open_session(self, run: Run, target: Target, command: str) -> records.ExecSession | None:
        """ExecuteCommand; "agent not connected" is retried with backoff while the task is young."""
        role = run.role_arn or None
        try:
            self.task = await _aws(_describe)(target, run)
        except AwsError:
            self.task = None  # ExecuteCommand says what is wrong
        delay = 1.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                return await _aws(ecs.execute_command)(
                    target.config,
                    run.region,
                    run.cluster,
                    run.task_arn,
                    command=command,
                    container=run.container,
                    role_arn=role,
                )
            except TargetNotConnected as exc:
                age = self._task_age()
                wait = float(settings.ECSPORTAL_RUN_AGENT_WAIT_SECONDS)
                if age is None or age + delay > wait or await self._cancelled_within(delay):
                    if self.cancel_event.is_set():
                        await self.end(RunStatus.CANCELLED, "Cancelled before the session opened.")
                    else:
                        await self.end(RunStatus.ERROR, explain_exec_error(exc, run=run, task=self.task))
                    return None
                delay = min(delay * 2, 8.0)
                await database_sync_to_async(_heartbeat)(self.pk, 0)
                logger.info("run %s: agent not connected yet, retrying (%s)", self.pk, loop.time())
            except AwsError as exc:
                await self.end(RunStatus.ERROR, explain_exec_error(exc, run=run, task=self.task))
                return None

    def _task_age(self) -> float | None:
        if self.task is None or self.task.started_at is None:
            return None
        return (timezone.now() - self.task.started_at).total_seconds()

    async def _cancelled_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.cancel_event.wait(), seconds)
            return True
        except TimeoutError:
            return False

    async def watch(self, run: Run, target: Target, started: float) -> None:
        """Heartbeat, cancel, time limit and task checks, until the session ends."""
        loop = asyncio.get_running_loop()
        beat = float(settings.ECSPORTAL_RUN_HEARTBEAT_SECONDS)
        check_every = float(settings.ECSPORTAL_RUN_TASK_CHECK_SECONDS)
        limit = float(run.time_limit_seconds or settings.ECSPORTAL_RUN_TIME_LIMIT_SECONDS)
        next_check = started + check_every
        client = self.client
        assert client is not None and self.writer is not None
        while True:
            remaining = started + limit - loop.time()
            if remaining <= 0:
                self.stop = (
                    RunStatus.TIMED_OUT,
                    f"Timed out: the run reached its time limit of {limit:g} s and the session was closed.",
                )
                await client.close()
                return
            woken = await self._cancelled_within(min(beat, remaining))
            try:
                requested, by, active = await self.writer.sink.heartbeat(self.pk, self.writer.written)
            except Exception as exc:  # one failed round (the database restarted): the next one reconnects
                logger.warning("run %s: heartbeat failed: %s", self.pk, exc)
                requested, by, active = None, "", True
            if not active:  # ended elsewhere (the stale sweep, say): give the session back
                self.stop = (RunStatus.ERROR, "The run was ended elsewhere while it was running.")
                await client.close()
                return
            if woken or requested is not None:
                await self.cancel(client, by)
                return
            if loop.time() >= next_check:
                next_check = loop.time() + check_every
                stopped = await self.task_stopped(run, target)
                if stopped:
                    self.stop = (RunStatus.ERROR, stopped)
                    await client.close()
                    return

    async def cancel(self, client: SsmClient, by: str) -> None:
        grace = float(settings.ECSPORTAL_RUN_CANCEL_GRACE_SECONDS)
        self.stop = (RunStatus.CANCELLED, f"Cancelled by {by or 'an operator'}: Ctrl-C was sent.")
        await client.send_input(b"\x03")
        await asyncio.sleep(grace)
        self.stop = (
            RunStatus.CANCELLED,
            f"Cancelled by {by or 'an operator'}: Ctrl-C was sent and the session closed after {grace:g} s.",
        )
        await client.close()

    async def task_stopped(self, run: Run, target: Target) -> str:
        """Why the task is no longer RUNNING ("" while it is, or when AWS cannot say right now)."""
        try:
            task = await _aws(_describe)(target, run)
        except AwsError as exc:
            logger.info("run %s: task check failed: %s", self.pk, exc)
            return ""
        if task is None:
            return "The task is gone: ECS no longer knows it, so the session was closed."
        if task.last_status == "RUNNING":
            return ""
        why = ": ".join(x for x in (task.stop_code, task.stopped_reason) if x) or "no reason given"
        return f"The task left RUNNING (now {task.last_status}): {why}. The session was closed."
