"""The watchdog beside a run's stream: heartbeat, cancel, time and silence limits, task checks.

Every `ECSPORTAL_RUN_HEARTBEAT_SECONDS` it writes the heartbeat and `bytes_out` through the
sink (a failed round is logged and the next one tries again) and learns about a cancel
stored by another process; a cancel in this process wakes it at once. Every
`ECSPORTAL_RUN_TASK_CHECK_SECONDS` it asks DescribeTasks whether the task is still RUNNING.
It ends the session at the run's time limit, and after `ECSPORTAL_RUN_IDLE_SECONDS` without
output (0: never). Silence is not loss: the data channel's WebSocket pings tell a live agent
from a lost one (`SsmClient`), so a quiet command is ended only by this limit, and says so.

It sets `stop` (status, end reason) before it closes the session; the runner ends the run
with it.
"""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings

from ecsportal.aws.errors import AwsError
from ecsportal.runs.models import RunStatus
from ecsportal.runs.target import Target, describe_task, in_aws_thread
from ecsportal.runs.writer import TranscriptWriter
from ecsportal.ssm.client import SsmClient

logger = logging.getLogger(__name__)


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"


class Watchdog:
    def __init__(
        self,
        *,
        target: Target,
        client: SsmClient,
        writer: TranscriptWriter,
        cancel_event: asyncio.Event,
        started: float,
    ) -> None:
        self.target = target
        self.pk = target.run.pk
        self.client = client
        self.writer = writer
        self.cancel_event = cancel_event
        self.started = started
        self.stop: tuple[str, str] | None = None  # (status, end reason) chosen here

    async def watch(self) -> None:
        """Until the session ends (the runner cancels this task then)."""
        loop = asyncio.get_running_loop()
        run = self.target.run
        beat = float(settings.ECSPORTAL_RUN_HEARTBEAT_SECONDS)
        check_every = float(settings.ECSPORTAL_RUN_TASK_CHECK_SECONDS)
        limit = float(run.time_limit_seconds or settings.ECSPORTAL_RUN_TIME_LIMIT_SECONDS)
        # A shell's idle limit counts input, not output (shellinput.ShellInput).
        silence = 0.0 if run.interactive else float(settings.ECSPORTAL_RUN_IDLE_SECONDS)
        next_check = self.started + check_every
        while True:
            now = loop.time()
            remaining = self.started + limit - now
            if remaining <= 0:
                await self._close(
                    RunStatus.TIMED_OUT,
                    f"The shell reached its maximum length of {_duration(limit)} and was closed."
                    if run.interactive
                    else f"Timed out: the run reached its time limit of {limit:g} s and the session was closed.",
                )
                return
            quiet_left = self.writer.last_output_at + silence - now if silence > 0 else float("inf")
            if quiet_left <= 0:
                await self._close(
                    RunStatus.TIMED_OUT,
                    f"No output for {_duration(silence)}: the run's silence limit closed the session "
                    "(the data channel was still alive).",
                )
                return
            woken = await self._cancelled_within(min(beat, remaining, quiet_left))
            try:
                requested, by, active = await self.writer.sink.heartbeat(self.pk, self.writer.written)
            except Exception as exc:  # one failed round (the database restarted): the next one reconnects
                logger.warning("run %s: heartbeat failed: %s", self.pk, exc)
                requested, by, active = None, "", True
            if not active:  # ended elsewhere (the stale sweep, say): give the session back
                await self._close(RunStatus.ERROR, "The run was ended elsewhere while it was running.")
                return
            if woken or requested is not None:
                await self.cancel(by)
                return
            if loop.time() >= next_check:
                next_check = loop.time() + check_every
                stopped = await self.task_stopped()
                if stopped:
                    await self._close(RunStatus.ERROR, stopped)
                    return

    async def _close(self, status: str, reason: str) -> None:
        self.stop = (status, reason)
        await self.client.close()

    async def _cancelled_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.cancel_event.wait(), seconds)
            return True
        except TimeoutError:
            return False

    async def cancel(self, by: str) -> None:
        grace = float(settings.ECSPORTAL_RUN_CANCEL_GRACE_SECONDS)
        self.stop = (RunStatus.CANCELLED, f"Cancelled by {by or 'an operator'}: Ctrl-C was sent.")
        await self.client.send_input(b"\x03")
        await asyncio.sleep(grace)
        await self._close(
            RunStatus.CANCELLED,
            f"Cancelled by {by or 'an operator'}: Ctrl-C was sent and the session closed after {grace:g} s.",
        )

    async def task_stopped(self) -> str:
        """Why the task is no longer RUNNING ("" while it is, or when AWS cannot say right now)."""
        try:
            task = await in_aws_thread(describe_task)(self.target)
        except AwsError as exc:
            logger.info("run %s: task check failed: %s", self.pk, exc)
            return ""
        if task is None:
            return "The task is gone: ECS no longer knows it, so the session was closed."
        if task.last_status == "RUNNING":
            return ""
        why = ": ".join(x for x in (task.stop_code, task.stopped_reason) if x) or "no reason given"
        return f"The task left RUNNING (now {task.last_status}): {why}. The session was closed."
