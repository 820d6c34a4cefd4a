"""The runner's side of an interactive shell (see `interactive.py` for the whole path).

`ShellInput` runs beside the runner of an interactive run, in whichever process owns the SSM
session: it listens on group "shell-<pk>" (the session sockets send there through the channel
layer, in both runner modes), writes keys and sizes into the data channel, records resizes and
"who typed" markers (and, where the account's policy says so, the typed bytes) for the
asciicast, and ends the session when nobody has typed for the idle limit (warning everyone
in the session a minute before).

**The echo path is short.** A socket on the same event loop as the runner (the in-process
runner) hands keys to `local_inbox(pk)` directly: no channel-layer message, no queue, no
task hop. The keys are written into the data channel before anything else, and nothing on
that path waits for the database: the recording's rows (markers, resizes, input) go to a
queue that a task of their own writes, in order, in batches (`_record_all`).

**One access check per process.** Every shell's owner is re-checked every
`ECSPORTAL_SOCKET_RECHECK_SECONDS` (`owner_access_lost`); the shells on one loop are checked
together, in one database call (`_AccessWatch`), instead of one call (and one connection)
per shell per round: with 50 shells that was a fifth of the server's samples, on the one
thread every database call of the process shares.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import weakref
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from ecsportal.accounts.models import Role, ShellAccess
from ecsportal.accounts.selectors import account_role_for_user
from ecsportal.runs import pacing
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


Record = tuple[float, str, str, int | None]  # offset, kind, data, user pk

_inboxes: dict[int, ShellInput] = {}  # run pk → its input side, on this process


def local_inbox(pk: int) -> ShellInput | None:
    """The input side of run `pk` if it runs on the calling event loop (the in-process runner):
    a session socket then hands it keys directly instead of through the channel layer."""
    inbox = _inboxes.get(pk)
    if inbox is None:
        return None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return inbox if inbox.loop is loop else None


def _record(run_pk: int, records: list[Record]) -> None:
    SessionEvent.objects.bulk_create(
        [
            SessionEvent(run_id=run_pk, offset=max(0.0, offset), kind=kind, data=data, user_id=user_pk)
            for offset, kind, data, user_pk in records
        ]
    )


def recheck_seconds() -> float:
    return float(getattr(settings, "ECSPORTAL_SOCKET_RECHECK_SECONDS", 3.0))


class _AccessWatch:
    """Every shell on one event loop, its owner's access asked together every recheck interval
    (one database call for them all); a shell whose owner lost it is closed "Access revoked"."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.shells: dict[int, ShellInput] = {}
        self.task: asyncio.Task | None = None

    def add(self, shell: ShellInput) -> None:
        self.shells[shell.pk] = shell
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._watch(), name="shells-access-watch")

    def discard(self, shell: ShellInput) -> None:
        if self.shells.get(shell.pk) is shell:
            del self.shells[shell.pk]

    async def _watch(self) -> None:
        while self.shells:
            try:
                lost = await database_sync_to_async(owners_access_lost)(list(self.shells))
            except Exception as exc:  # the database away: the sessions go on, asked again next round
                logger.info("the shells' owners' access could not be checked: %s", exc)
                lost = {}
            for pk, why in lost.items():
                shell = self.shells.get(pk)
                if shell is not None and why:
                    self.discard(shell)
                    await shell.close(RunStatus.ERROR, f"Access revoked: {why}")
            await asyncio.sleep(recheck_seconds())


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AccessWatch] = weakref.WeakKeyDictionary()


def _access_watch() -> _AccessWatch:
    loop = asyncio.get_running_loop()
    watch = _watches.get(loop)
    if watch is None:
        watch = _watches[loop] = _AccessWatch(loop)
    return watch


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
        self._records: list[Record] = []  # the recording's rows, not yet written
        self._record_wake = asyncio.Event()

    async def run_beside(self) -> None:
        """Until cancelled: listen, record, and watch the idle limit and the owner's access."""
        _inboxes[self.pk] = self
        watch = _access_watch()
        watch.add(self)
        bulk = pacing.pacer()
        bulk.shell_opened()  # bulk runs on this loop read less ahead while it is open (pacing.py)
        try:
            await asyncio.gather(self._listen_on_layer(), self._record_all(), self.watch_idle(), self.watch_expiry())
        finally:
            bulk.shell_closed()
            watch.discard(self)
            if _inboxes.get(self.pk) is self:
                del _inboxes[self.pk]
            if self._records:  # what was typed last is still recorded, however the session ended
                try:
                    await asyncio.shield(database_sync_to_async(_record)(self.pk, self._take_records()))
                except Exception as exc:
                    logger.warning("run %s: the recording's last events were not stored: %s", self.pk, exc)

    async def _listen_on_layer(self) -> None:
        """Input from sockets in other processes (and from this one when no local inbox is used)."""
        if self.layer is None:
            return
        # The layer's own prefix: channels_redis reads every process-local channel through one
        # key per prefix under one lock, so a channel of another prefix would starve the sockets.
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(shell_group(self.pk), self.channel)
        try:
            await self.listen()
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
        """One message from a session socket (through the layer, or directly: `local_inbox`).
        Nothing here waits for the database: the recording's rows are queued."""
        kind = message.get("type")
        now = self.loop.time()
        if kind == "shell.input":
            data = base64.b64decode(message["data"], validate=True)
            user_pk = int(message["user"])
            self.last_input_at = now
            # The keys first: the echo's output is published at once, and nothing before it.
            self.writer.expect_echo()
            pacing.pacer().keystroke(self.pk)  # bulk output on this loop waits for the echo (pacing.py)
            await self.client.send_input(data)
            if user_pk != self.typist or now - self.typed_at > MARKER_GAP:
                self._queue_record(now, SessionEventKind.MARKER, f"{message.get('username', '')} typed", user_pk)
            self.typist, self.typed_at = user_pk, now
            if self.run.record_input:
                self._queue_record(now, SessionEventKind.INPUT, data.decode("utf-8", "replace"), user_pk)
        elif kind == "shell.resize":
            cols = max(2, min(int(message["cols"]), MAX_COLS))
            rows = max(1, min(int(message["rows"]), MAX_ROWS))
            await self.client.resize(cols, rows)
            user = message.get("user")
            self._queue_record(now, SessionEventKind.RESIZE, f"{cols}x{rows}", None if user is None else int(user))
        elif kind == "shell.end":
            await self.close(str(message.get("status") or RunStatus.COMPLETED), str(message["reason"]))

    def _queue_record(self, now: float, kind: str, data: str, user_pk: int | None) -> None:
        self._records.append((now - self.started, kind, data, user_pk))
        self._record_wake.set()

    def _take_records(self) -> list[Record]:
        records, self._records = self._records, []
        return records

    async def _record_all(self) -> None:
        """Write the queued recording rows, in order, in one call per batch; a failed write is
        tried again (the rows stay first in the queue) a second later."""
        while True:
            await self._record_wake.wait()
            self._record_wake.clear()
            while self._records:
                records = self._take_records()
                try:
                    await database_sync_to_async(_record)(self.pk, records)
                except asyncio.CancelledError:
                    self._records[:0] = records
                    raise
                except Exception as exc:
                    logger.warning("run %s: recording the session's events failed, retrying: %s", self.pk, exc)
                    self._records[:0] = records
                    await asyncio.sleep(1.0)

    async def close(self, status: str, reason: str) -> None:
        if self.stop is None:
            self.stop = (status, reason)
        await self.client.close()

    async def watch_expiry(self) -> None:
        """The grant's end ("access expired"); the owner's membership, role, account and
        shell policy are asked by this loop's `_AccessWatch`, whether or not any page is open."""
        expires = self.run.access_expires_at
        if expires is None:
            return
        while True:
            left = (expires - timezone.now()).total_seconds()
            if left <= 0:
                when = expires.strftime("%H:%M UTC")
                await self.close(RunStatus.TIMED_OUT, f"Access expired: the shell access granted until {when} ended.")
                return
            await asyncio.sleep(max(0.05, min(left, recheck_seconds())))

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
    return owners_access_lost([run_pk]).get(run_pk, "")


def owners_access_lost(run_pks: list[int]) -> dict[int, str]:
    """`owner_access_lost` for many sessions at once: one query for the runs, one per distinct
    (owner, account). Runs that no longer exist are left out."""
    runs = Run.objects.select_related("account", "requested_by").filter(pk__in=run_pks)
    said: dict[tuple[int, int], str] = {}
    out: dict[int, str] = {}
    for run in runs:
        key = (run.requested_by_id, run.account_id)
        if key not in said:
            said[key] = _access_lost(run.requested_by, run.account)
        out[run.pk] = said[key]
    return out


def _access_lost(owner: Any, account: Any) -> str:
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
