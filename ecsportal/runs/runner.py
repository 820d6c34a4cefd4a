"""The runner: one coroutine, `execute_run(run_pk)`, owns a run's ECS Exec session.

Both dispatch modes run it (dispatcher.py). It moves the run QUEUED → CONNECTING → RUNNING →
an end state through `lifecycle`; calls ExecuteCommand through the AWS layer; opens the data
channel with `SsmClient`, sends the terminal size first, and streams the output:

    SsmClient → ExitMarker (marker.py) → TranscriptWriter (writer.py) → ChunkSink (sink.py)
                                                                       → group "run-<pk>"

A `Watchdog` (watchdog.py) beside the stream beats the heartbeat, learns about cancels and
enforces the limits; `explain.py` puts failures in words. Every end goes through
`lifecycle.run_end`, retried with backoff while the database is away, so a run ends with its
true cause rather than waiting for the stale sweep.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import Error as DatabaseError
from django.utils import timezone

from ecsportal.aws import ecs, records
from ecsportal.aws.errors import AwsError, EndpointUnreachable, TargetNotConnected, Throttled
from ecsportal.logs import with_run_id
from ecsportal.runs import loops, pacing
from ecsportal.runs.explain import explain_end, explain_exec_error
from ecsportal.runs.lifecycle import run_end, run_started
from ecsportal.runs.marker import ExitMarker
from ecsportal.runs.models import Run, RunMode, RunStatus
from ecsportal.runs.shellinput import ShellInput
from ecsportal.runs.sink import heartbeat_now
from ecsportal.runs.slots import GONE, TAKEN, run_take_slot
from ecsportal.runs.target import Target, describe_task, in_aws_thread
from ecsportal.runs.target import load_target as _load
from ecsportal.runs.watchdog import Watchdog
from ecsportal.runs.writer import StorageLost, TranscriptWriter
from ecsportal.ssm.client import SsmClient
from ecsportal.ssm.session import EndKind, SessionEnded

logger = logging.getLogger(__name__)

RUNS_CHANNEL = "ecsportal-runs"  # the runs workers' queue (worker mode)
RUNNER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
STOPPED = "Runner lost: the server stopped while the command was running."
FLUSH_SECONDS = 5.0  # a stopping runner's last output gets this long to be stored
OPEN_TIMEOUT = 10.0  # one attempt at opening the data channel
SLOT_FIRST_POLL, SLOT_LAST_POLL = 0.5, 2.0  # a run waiting for a slot asks this often
FIRST_RETRY, LAST_RETRY = 1.0, 8.0  # backoff between attempts at starting the session (with jitter)


async def _in_db(fn: Callable[..., Any], /, **kwargs: Any) -> Any:
    """A lifecycle write on Django's database thread, tried again with backoff while the
    database is away (up to ECSPORTAL_RUN_STORE_RETRY_SECONDS): a run's end is never lost to a blip."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + float(settings.ECSPORTAL_RUN_STORE_RETRY_SECONDS)
    delay = 0.2
    while True:
        try:
            return await database_sync_to_async(fn)(**kwargs)
        except DatabaseError as exc:
            if loop.time() + delay > give_up:
                raise
            logger.warning("run %s: %s failed, retrying: %s", kwargs.get("run_pk"), getattr(fn, "__name__", fn), exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


@with_run_id  # every record the runner writes (its threads' too) carries the run's ID
async def execute_run(run_pk: int) -> None:
    """Run a queued run to its end; never raises (but a cancel), never leaves the run active."""
    runner = _Runner(run_pk)
    try:
        await runner.run()
    except asyncio.CancelledError:
        # The process is stopping (a drain's deadline passed) or the loop is going away: the
        # output received so far is stored (briefly), then the run ends with the true cause.
        # A run still waiting for a slot never started: it goes to another runner instead.
        if runner.waiting:
            await asyncio.shield(runner.give_back())
            raise
        if runner.writer is not None:
            await runner.writer.flush(FLUSH_SECONDS)
        await _end_quietly(run_pk, loops.stopping_reason() or STOPPED, runner)
        raise
    except StorageLost as exc:
        await _end_quietly(run_pk, f"The portal could not store the output: {exc}.", runner)
    except Exception as exc:
        logger.exception("run %s: the runner failed", run_pk)
        await _end_quietly(run_pk, f"The portal's runner failed: {type(exc).__name__}: {exc}", runner)
    finally:
        loops.drop_cancel_event(run_pk)
        if runner.writer is not None:
            await asyncio.shield(runner.writer.abort())


async def _end_quietly(run_pk: int, reason: str, runner: _Runner) -> None:
    try:
        await asyncio.shield(runner.end(RunStatus.ERROR, reason))
    except Exception:
        logger.exception("run %s: could not record the runner's failure", run_pk)


class _Runner:
    def __init__(self, run_pk: int) -> None:
        self.pk = run_pk
        self.client: SsmClient | None = None
        self.writer: TranscriptWriter | None = None
        self.watchdog: Watchdog | None = None
        self.shell: ShellInput | None = None  # an interactive run's input side
        self.task: records.Task | None = None
        self.cancel_event = loops.cancel_event(run_pk)
        self.waiting = False  # QUEUED, waiting for a slot (slots.py)

    async def end(self, status: str, reason: str, exit_code: int | None = None) -> None:
        writer = self.writer
        if writer is not None and writer.cut:
            reason = (
                f"{reason} Output past the budget of {writer.budget:,} bytes was cut: "
                f"{writer.cut:,} bytes were neither stored nor shown."
            )
        # Every end in the log too: a run that failed under load is explained without its page.
        (logger.info if status in (RunStatus.SUCCEEDED, RunStatus.COMPLETED) else logger.warning)(
            "run %s: ends %s: %s", self.pk, status, reason
        )
        await _in_db(
            run_end,
            run_pk=self.pk,
            status=status,
            end_reason=reason,
            exit_code=exit_code,
            bytes_out=writer.written if writer else None,
        )

    async def run(self) -> None:
        target = await database_sync_to_async(_load)(self.pk)
        if target is None:
            return
        run = target.run
        if not await self.take_slot():
            return
        marker = ExitMarker() if run.mode == RunMode.SHELL else None
        command = marker.wrap(target.command) if marker else target.command
        beating = asyncio.create_task(self._beat_while_connecting(), name=f"run-{self.pk}-connecting")
        try:
            started = await self.connect(run, target, command)
        finally:
            beating.cancel()
            await asyncio.gather(beating, return_exceptions=True)
        if started is None:
            return
        self.writer = TranscriptWriter(self.pk, started=started)
        self.watchdog = Watchdog(
            target=target, client=self.client, writer=self.writer, cancel_event=self.cancel_event, started=started
        )
        if run.interactive:
            self.shell = ShellInput(run=run, client=self.client, writer=self.writer, started=started)
        exit_code = await self.stream(marker)
        await self.finish(run, exit_code, self.client.end)

    async def connect(self, run: Run, target: Target, command: str) -> float | None:
        """ExecuteCommand, the data channel, RUNNING: the loop time it started, or None when the
        run was ended instead."""
        session = await self.open_session(run, target, command)
        if session is None:
            return None
        self.client = await self.open_channel(session)
        if self.client is None:
            return None
        await self.client.resize(run.cols, run.rows)
        started = asyncio.get_running_loop().time()
        if not await _in_db(run_started, run_pk=self.pk, session_id=session.session_id):
            await self.client.close()  # ended meanwhile (a stale-runner sweep): give the session back
            return None
        return started

    async def _beat_while_connecting(self) -> None:
        """The heartbeat while the run is CONNECTING (the watchdog beats it once it runs). Under
        load that can take a minute: AWS calls queue for threads and for the API's rate, a data
        channel is slow to accept. Without it the sweep took live runs for lost
        (`tests/benchmarks/scale.py`: 63 of 500 ended "Runner lost" after 60 s CONNECTING)."""
        interval = float(settings.ECSPORTAL_RUN_HEARTBEAT_SECONDS)
        while True:
            await asyncio.sleep(interval)
            try:
                await database_sync_to_async(heartbeat_now)(self.pk, 0)
            except DatabaseError as exc:  # the next one tries again; the sweep allows many misses
                logger.warning("run %s: heartbeat while connecting failed: %s", self.pk, exc)

    async def stream(self, marker: ExitMarker | None) -> int | None:
        """Output until the session ends; the exit code, if the marker said it."""
        client, writer, watchdog = self.client, self.writer, self.watchdog
        assert client is not None and writer is not None and watchdog is not None
        watching = [asyncio.create_task(watchdog.watch(), name=f"run-{self.pk}-watchdog")]
        if self.shell is not None:
            watching.append(asyncio.create_task(self.shell.run_beside(), name=f"run-{self.pk}-shell-input"))
        pacer = pacing.pacer()
        bulk = pacer if self.shell is None else None  # output nobody types into yields to shells
        paced = False  # whether the client's read-ahead is lowered (pacing.py)
        if bulk is not None:
            client.yield_to(bulk)  # its reader asks the gate before each message
        try:
            async for chunk in client:
                if bulk is not None:
                    if bulk.must_wait():
                        await bulk.released()
                    if (bulk.shells > 0) != paced:
                        paced = not paced
                        client.read_ahead(pacing.PACED_READ_AHEAD if paced else None)
                writer.append(marker.feed(chunk) if marker else chunk)
                if bulk is None:
                    pacer.echoed(self.pk)  # this shell's output is out: bulk output may go on
                await writer.room()
        finally:
            for task in watching:
                task.cancel()
            # Whatever the watchdog ended with (cancelled, or an error), the session is closed.
            await asyncio.gather(*watching, return_exceptions=True)
            await client.close()
        exit_code = None
        if marker:
            rest, exit_code = marker.finish()
            writer.append(rest)
        await writer.close()
        return exit_code

    async def finish(self, run: Run, exit_code: int | None, end: SessionEnded | None) -> None:
        stop = self.watchdog.stop if self.watchdog else None
        if self.shell is not None and self.shell.stop is not None and stop is None:
            stop = self.shell.stop  # the owner ended it, the idle limit, access revoked
        if stop is not None:
            status, reason = stop
            if status == RunStatus.CANCELLED and exit_code is not None:
                reason = f"{reason} The command exited with {exit_code}."
            await self.end(status, reason, exit_code)
            return
        if end is not None and end.kind == EndKind.NORMAL:
            if run.interactive:
                await self.end(
                    RunStatus.COMPLETED, "The shell ended: its shell exited (exit, or Ctrl-D at the prompt)."
                )
            elif run.mode == RunMode.RAW:
                await self.end(
                    RunStatus.COMPLETED,
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

    async def take_slot(self) -> bool:
        """QUEUED → CONNECTING, once the concurrency limits (slots.py) leave room: until then the
        run waits, QUEUED, asking again every 0.5 s, slowing to 2 s (jittered). False when the
        run ended meanwhile (a cancel)."""
        said = ""
        delay = SLOT_FIRST_POLL
        while True:
            answer = await _in_db(run_take_slot, run_pk=self.pk, runner_id=RUNNER_ID)
            if answer in (TAKEN, GONE):
                self.waiting = False
                if said:
                    logger.info("run %s: %s", self.pk, "got a slot" if answer == TAKEN else "ended while waiting")
                return answer == TAKEN
            self.waiting = True
            if not said:
                logger.info("run %s: %s", self.pk, answer)
            said = answer
            if loops.stopping_reason() is not None:  # this process is stopping: not here, then
                await self.give_back()
                return False
            await asyncio.sleep(delay * random.uniform(0.75, 1.25))  # a cancel ends a queued run: GONE next
            delay = min(delay * 1.5, SLOT_LAST_POLL)

    async def give_back(self) -> None:
        """A run that waited for a slot in a stopping process: back to the runs queue for another
        worker (worker mode); in process, or if the queue refuses it, ended saying why."""
        self.waiting = False
        if settings.ECSPORTAL_RUNNER_MODE == "worker":
            try:
                await get_channel_layer().send(RUNS_CHANNEL, {"type": "run.execute", "run_pk": self.pk})
                logger.info("run %s: handed back to the queue while it waited for a slot (stopping)", self.pk)
                return
            except Exception as exc:
                logger.warning("run %s: could not hand it back to the queue: %s", self.pk, exc)
        await _in_db(
            run_end,
            run_pk=self.pk,
            status=RunStatus.ERROR,
            end_reason="Not run: the server holding it while it waited for a free slot was stopped "
            "(a deploy or a restart). Start it again.",
            from_statuses=(RunStatus.QUEUED,),
        )

    async def open_channel(self, session: records.ExecSession) -> SsmClient | None:
        """The data channel. An attempt that failed before the token was sent (the connection or
        the WebSocket handshake refused or timed out: an overloaded endpoint) showed the server
        nothing, so it is made again with the same URL and token, with backoff, for up to
        ECSPORTAL_RUN_START_RETRY_SECONDS. None when the run was ended instead."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + float(settings.ECSPORTAL_RUN_START_RETRY_SECONDS)
        delay = FIRST_RETRY
        while True:
            # No idle timeout in the client: silence is the watchdog's limit, loss the pings'.
            client = SsmClient(session.stream_url, session.token_value, open_timeout=OPEN_TIMEOUT, idle_timeout=None)
            await client.open()
            end = client.end
            if end is None:
                return client
            await client.close()
            if client.token_sent or not await self._wait_to_retry(delay, give_up):
                if self.cancel_event.is_set():
                    await self.end(RunStatus.CANCELLED, "Cancelled before the session opened.")
                else:
                    await self.end(RunStatus.ERROR, explain_end(end))
                return None
            logger.warning("run %s: the data channel did not open (%s); trying again", self.pk, end.message)
            delay = min(delay * 2, LAST_RETRY)

    async def _wait_to_retry(self, delay: float, give_up: float) -> bool:
        """Wait `delay` (jittered, so runs that failed together do not retry together) while
        keeping the heartbeat; False when the time is up or the run was cancelled meanwhile."""
        wait = delay * random.uniform(0.5, 1.0)
        if asyncio.get_running_loop().time() + wait > give_up:
            return False
        await database_sync_to_async(heartbeat_now)(self.pk, 0)  # the sweep must not take it for lost
        return not await self._cancelled_within(wait)

    async def open_session(self, run: Run, target: Target, command: str) -> records.ExecSession | None:
        """ExecuteCommand. "Agent not connected" is retried with backoff while the task is young;
        throttling and an endpoint that cannot be reached or did not answer (after the SDK's own
        retries) for up to ECSPORTAL_RUN_START_RETRY_SECONDS: many runs started at once queue
        behind AWS's rate limit instead of failing. The task is described only when ExecuteCommand
        failed (its age, its state for the explanation): one AWS call per run, not two."""
        delay = 1.0
        give_up = asyncio.get_running_loop().time() + float(settings.ECSPORTAL_RUN_START_RETRY_SECONDS)
        while True:
            try:
                return await in_aws_thread(ecs.execute_command)(
                    target.config,
                    run.region,
                    run.cluster,
                    run.task_arn,
                    command=command,
                    container=run.container,
                    role_arn=run.role_arn or None,
                )
            except TargetNotConnected as exc:
                await self._describe(target)
                age = self._task_age()
                wait = float(settings.ECSPORTAL_RUN_AGENT_WAIT_SECONDS)
                if age is None or age + delay > wait or await self._cancelled_within(delay):
                    if self.cancel_event.is_set():
                        await self.end(RunStatus.CANCELLED, "Cancelled before the session opened.")
                    else:
                        await self.end(RunStatus.ERROR, explain_exec_error(exc, run=run, task=self.task))
                    return None
                delay = min(delay * 2, 8.0)
                await database_sync_to_async(heartbeat_now)(self.pk, 0)
                logger.info("run %s: agent not connected yet, retrying in %g s", self.pk, delay)
            except (Throttled, EndpointUnreachable) as exc:
                if not await self._wait_to_retry(delay, give_up):
                    if self.cancel_event.is_set():
                        await self.end(RunStatus.CANCELLED, "Cancelled before the session opened.")
                    else:
                        await self._describe(target)
                        await self.end(RunStatus.ERROR, explain_exec_error(exc, run=run, task=self.task))
                    return None
                logger.warning("run %s: ExecuteCommand failed (%s: %s); trying again", self.pk, exc.code, exc)
                delay = min(delay * 2, LAST_RETRY)
            except AwsError as exc:
                await self._describe(target)
                await self.end(RunStatus.ERROR, explain_exec_error(exc, run=run, task=self.task))
                return None

    async def _describe(self, target: Target) -> None:
        """The run's task, once (None if DescribeTasks fails too: ExecuteCommand's error says what is wrong)."""
        if self.task is not None:
            return
        try:
            self.task = await in_aws_thread(describe_task)(target)
        except AwsError:
            self.task = None

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
