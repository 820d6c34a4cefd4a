"""The runner's side of an interactive shell (see `interactive.py` for the whole path).

`ShellInput` runs beside the runner of an interactive run, in whichever process owns the SSM
session: it listens on group "shell-<pk>" (the session sockets send there through the channel
layer, in both runner modes), writes keys and sizes into the data channel, records resizes and
"who typed" markers (and, where the account's policy says so, the typed bytes) for the
asciicast, and ends the session when nobody has typed for the idle limit (warning everyone
in the session a minute before).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from ecsportal.accounts.models import Role, ShellAccess
from ecsportal.accounts.selectors import account_role_for_user
from ecsportal.runs.models import Run, RunStatus, SessionEvent, SessionEventKind
from ecsportal.runs.writer import TranscriptWriter
from ecsportal.ssm.client import SsmClient

logger = logging.getLogger(__name__)

WARN_BEFORE = 60.0  # seconds before the idle limit that everyone in the session is warned
MARKER_GAP = 2.0  # a new "who typed" marker when the typist changes or after this much quiet
MAX_COLS, MAX_ROWS = 500, 200


def shell_group(pk: int) -> str:
    """The runner's inbox for one session: input, resize, end."""
    return f"shell-{pk}"


def session_group(pk: int) -> str:
    """Every socket in one session: state (who is in it, who types) and notices."""
    return f"session-{pk}"


def _record(run_pk: int, offset: float, kind: str, data: str, user_pk: int | None) -> None:
    SessionEvent.objects.create(run_id=run_pk, offset=max(0.0, offset), kind=kind, data=data, user_id=user_pk)


class ShellInput:
    """Beside the runner of an interactive run: takes input, resizes and ends from group
    "shell-<pk>" and applies them to the SSM session; ends the session after the idle limit
    (warning a minute before). `stop` (status, reason) is set before it closes the session."""

    def __init__(self, *, run: Run, client: SsmClient, writer: TranscriptWriter, started: float) -> None:
        self.run = run
        self.writer = writer
        self.pk = run.pk
        self.client = client
        self.started = started
        self.loop = asyncio.get_running_loop()
        self.last_input_at = self.loop.time()
        self.typist: int | None = None
        self.typed_at = float("-inf")
        self.stop: tuple[str, str] | None = None
        self.layer = get_channel_layer()
        self.channel: str | None = None

    async def run_beside(self) -> None:
        """Until cancelled: listen and watch the idle limit."""
        if self.layer is None:
            return
        # The layer's own prefix: channels_redis reads every process-local channel through one
        # key per prefix under one lock, so a channel of another prefix would starve the sockets.
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(shell_group(self.pk), self.channel)
        try:
            await asyncio.gather(self.listen(), self.watch_idle(), self.watch_access())
        finally:
            try:
                await asyncio.shield(self.layer.group_discard(shell_group(self.pk), self.channel))
            except Exception as exc:  # Redis away: the membership lapses with the group
                logger.info("run %s: leaving the shell group failed: %s", self.pk, exc)

    async def listen(self) -> None:
        assert self.layer is not None and self.channel is not None
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker restarting: input waits, the session lives on
                logger.warning("run %s: receiving shell input failed: %s", self.pk, exc)
                await asyncio.sleep(1.0)
                continue
            try:
                await self.handle(message)
            except (ValueError, TypeError, KeyError) as exc:  # consumers validate; never trust the wire
                logger.warning("run %s: a malformed shell message was dropped: %s", self.pk, exc)

    async def handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        now = self.loop.time()
        if kind == "shell.input":
            data = base64.b64decode(message["data"], validate=True)
            user_pk = int(message["user"])
            self.last_input_at = now
            # The keys first, the record after: an echo never waits for the database.
            self.writer.expect_echo()
            await self.client.send_input(data)
            if user_pk != self.typist or now - self.typed_at > MARKER_GAP:
                await database_sync_to_async(_record)(
                    self.pk,
                    now - self.started,
                    SessionEventKind.MARKER,
                    f"{message.get('username', '')} typed",
                    user_pk,
                )
            self.typist, self.typed_at = user_pk, now
            if self.run.record_input:
                await database_sync_to_async(_record)(
                    self.pk, now - self.started, SessionEventKind.INPUT, data.decode("utf-8", "replace"), user_pk
                )
        elif kind == "shell.resize":
            cols = max(2, min(int(message["cols"]), MAX_COLS))
            rows = max(1, min(int(message["rows"]), MAX_ROWS))
            await self.client.resize(cols, rows)
            await database_sync_to_async(_record)(
                self.pk, now - self.started, SessionEventKind.RESIZE, f"{cols}x{rows}", message.get("user")
            )
        elif kind == "shell.end":
            await self.close(str(message.get("status") or RunStatus.COMPLETED), str(message["reason"]))

    async def close(self, status: str, reason: str) -> None:
        if self.stop is None:
            self.stop = (status, reason)
        await self.client.close()

    async def watch_access(self) -> None:
        """The owner's access, again every few seconds while the session lives: the grant's end
        ("access expired"), a membership removed or lowered below operator, a deactivated owner,
        shells turned off on the account ("access revoked"), whether or not any page is open."""
        every = float(getattr(settings, "ECSPORTAL_SOCKET_RECHECK_SECONDS", 3.0))
        expires = self.run.access_expires_at
        while True:
            if expires is not None and timezone.now() >= expires:
                when = expires.strftime("%H:%M UTC")
                await self.close(RunStatus.TIMED_OUT, f"Access expired: the shell access granted until {when} ended.")
                return
            try:
                why = await database_sync_to_async(owner_access_lost)(self.pk)
            except Exception as exc:  # the database away: the session goes on, asked again next round
                logger.info("run %s: the owner's access could not be checked: %s", self.pk, exc)
                why = ""
            if why:
                await self.close(RunStatus.ERROR, f"Access revoked: {why}")
                return
            wait = every
            if expires is not None:
                wait = min(wait, max(0.05, (expires - timezone.now()).total_seconds()))
            await asyncio.sleep(wait)

    async def watch_idle(self) -> None:
        idle = float(self.run.shell_idle_seconds or settings.ECSPORTAL_SHELL_IDLE_SECONDS)
        if idle <= 0:
            return
        warned_for = None
        while True:
            now = self.loop.time()
            end_at = self.last_input_at + idle
            warn_at = end_at - WARN_BEFORE
            if now >= end_at:
                await self.close(
                    RunStatus.TIMED_OUT, f"No input for {_minutes(idle)}: the shell's idle limit closed the session."
                )
                return
            if now >= warn_at and warned_for != self.last_input_at:
                warned_for = self.last_input_at
                left = max(1, round(end_at - now))
                await self.notice(f"No input for a while: this shell ends in {left} seconds unless someone types.")
            await asyncio.sleep(max(0.05, min(1.0, (warn_at if now < warn_at else end_at) - now)))

    async def notice(self, text: str) -> None:
        if self.layer is None:
            return
        try:
            await self.layer.group_send(session_group(self.pk), {"type": "session.notice", "text": text})
        except Exception as exc:
            logger.info("run %s: a session notice was not sent: %s", self.pk, exc)


def owner_access_lost(run_pk: int) -> str:
    """Why the session's owner may no longer hold it, in words ("" while they may)."""
    run = Run.objects.select_related("account", "requested_by").get(pk=run_pk)
    owner, account = run.requested_by, run.account
    if not owner.is_active:
        return f"{owner.get_username()} was deactivated."
    role = account_role_for_user(user=owner, account=account)
    if role is None or role < Role.OPERATOR:
        return f"{owner.get_username()} is no longer an operator on {account.name}."
    if not account.is_enabled or account.effective_shell_access == ShellAccess.OFF:
        return f"shells are turned off on {account.name}."
    return ""


def _minutes(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        n = int(seconds // 60)
        return f"{n} minute{'s' if n != 1 else ''}"
    return f"{seconds:g} seconds"


def shell_deadline_text(run: Run) -> str:
    """The watchdog's words when a shell reaches its time limit."""
    return f"The shell reached its maximum length of {_minutes(float(run.time_limit_seconds))} and was closed."
