"""The socket of an interactive shell: `ws/sessions/<pk>/?after=<seq>`.

A `RunConsumer` (replay, live output, the acknowledged window, the status) that also takes
input. The server decides who may type, never the page: input is passed on only from the
person holding the keyboard, while the session is live, not paused (moderated without an
approver watching) and, for the owner, while the account's shell policy still allows them
(asked again at every attach). Everyone else's input is refused with a message and goes
nowhere. Frames are bounded: a frame that is not JSON of a known shape is refused with close
code 4400, one over the frame limit with 4413; input past the rate limit is dropped and said.

Messages a page may send, besides the run socket's `ack` and `status`:
`{"type": "input", "data": "<text typed>"}`, `{"type": "resize", "cols": n, "rows": m}`,
`{"type": "keyboard", "to": "<username>"}` (the owner hands it; `"to": null` takes it back),
`{"type": "session"}` (a page that has no state asks for it: the state published when its socket
opened can reach the page before the script that reads it has loaded; answered to that socket
only, at most once a second).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import weakref
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404

from ecsportal.accounts.models import Role
from ecsportal.runs import interactive
from ecsportal.runs.consumers import ASK_EVERY, RunConsumer
from ecsportal.runs.models import Run, RunStatus
from ecsportal.runs.selectors import run_get_for_user, seat_lease_seconds
from ecsportal.runs.services import RunRefused
from ecsportal.runs.shellinput import MAX_COLS, MAX_ROWS, local_inbox, session_group, shell_group

logger = logging.getLogger(__name__)

CLOSE_MALFORMED = 4400  # not JSON, or not a message this socket knows
CLOSE_TOO_LARGE = 4413  # a frame over ECSPORTAL_SHELL_INPUT_FRAME_BYTES
BURST_SECONDS = 4.0  # the rate limit's bucket holds this many seconds of input
REFUSED_EVERY = 1.0  # the same refusal is said at most once a second per socket


def _authorise(user: Any, pk: int) -> Run | None:
    try:
        run = run_get_for_user(user=user, run_pk=pk, min_role=Role.VIEWER)
    except (Http404, PermissionDenied):
        return None
    return run if run.interactive else None


def _join(run: Run, user: Any, channel_name: str) -> tuple[dict[str, Any], str]:
    """Take a seat; the state after it, and for the owner why they may not type ("" if they may)."""
    interactive.seat_take(run=run, user=user, channel_name=channel_name)
    refusal = ""
    if user.pk == run.requested_by_id:
        permit = interactive.permit_for_run(user=user, run=run)
        refusal = "" if permit.allowed else permit.reason
    return interactive.session_state(run.pk), refusal


def _keep_seats(seated: list[tuple[str, Run, Any]]) -> dict[int, dict[str, Any]]:
    """One round of a process's seat keeper: renew its seats' leases, take again any swept while
    the process stalled, sweep every process's expired seats; the new state of each run whose
    seats changed."""
    lost = interactive.seats_renew([name for name, _, _ in seated])
    changed = interactive.seats_sweep()
    for name, run, user in seated:
        if name in lost:
            interactive.seat_take(run=run, user=user, channel_name=name)
            changed.add(run.pk)
    return {pk: interactive.session_state(pk) for pk in changed}


class _SeatKeeper:
    """One task per event loop (per process) keeps the leases of its sockets' seats and sweeps the
    seats of dead processes, whose sockets will never say goodbye."""

    def __init__(self) -> None:
        self.consumers: set[SessionConsumer] = set()
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        while self.consumers:
            await asyncio.sleep(seat_lease_seconds() / 3)
            try:
                await self.once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database away: seats are renewed at the next round
                logger.warning("keeping the shells' seats failed (%s); trying again", exc)

    async def once(self) -> None:
        seated = [(c.channel_name, c.run, c.user) for c in self.consumers if c.seated]
        states = await database_sync_to_async(_keep_seats)(seated)
        layer = get_channel_layer()
        for pk, state in states.items():
            await layer.group_send(session_group(pk), {"type": "session.state", "state": state})


_keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _SeatKeeper] = weakref.WeakKeyDictionary()


def _keeper_join(consumer: SessionConsumer) -> None:
    loop = asyncio.get_running_loop()
    keeper = _keepers.get(loop)
    if keeper is None:
        keeper = _keepers[loop] = _SeatKeeper()
    keeper.consumers.add(consumer)
    if keeper.task is None or keeper.task.done():
        keeper.task = loop.create_task(keeper.run(), name="shell-seat-keeper")


def _keeper_leave(consumer: SessionConsumer) -> None:
    keeper = _keepers.get(asyncio.get_running_loop())
    if keeper is None:
        return
    keeper.consumers.discard(consumer)
    if not keeper.consumers and keeper.task is not None:
        keeper.task.cancel()
        keeper.task = None


class SessionConsumer(RunConsumer):
    state: dict[str, Any] | None = None
    owner_refusal = ""
    refused_text = ""
    seated = False
    state_asked_at = float("-inf")

    async def authorise(self, user: Any) -> list[str] | None:
        pk = int(self.scope["url_route"]["kwargs"]["pk"])
        run = await database_sync_to_async(_authorise)(user, pk)
        if run is None:
            return None
        self.run = run
        self.user = user
        self.account_pk = run.account_id  # the revocation signal names the account
        self.allowance = float(settings.ECSPORTAL_SHELL_INPUT_BYTES_PER_SECOND) * BURST_SECONDS
        self.filled_at = time.monotonic()
        self.refused_at = float("-inf")
        return [f"run-{pk}", session_group(pk)]

    async def dispatch(self, message: dict[str, Any]) -> None:
        """A frame from the page skips Channels' per-message `aclose_old_connections()`: that is a
        hop to the one thread every database call of the process shares, so each keystroke
        waited behind whatever was there (a recording's write, fifty shells' access checks).
        What a frame needs from the database goes through `database_sync_to_async`, which
        closes old connections itself."""
        if message.get("type") == "websocket.receive":
            await self.websocket_receive(message)
            return
        await super().dispatch(message)

    async def on_open(self) -> None:
        await super().on_open()
        self.state, self.owner_refusal = await database_sync_to_async(_join)(self.run, self.user, self.channel_name)
        self.seated = True
        _keeper_join(self)
        await self.publish_state()

    async def disconnect(self, code: int) -> None:
        if self.seated:
            self.seated = False
            _keeper_leave(self)
            try:
                pk = await database_sync_to_async(interactive.seat_leave)(channel_name=self.channel_name)
                if pk is not None:
                    await self.publish_state()
            except Exception as exc:  # the database away: the seat is cleared when the run ends
                logger.warning("run %s: leaving the session failed: %s", self.run.pk, exc)
        await super().disconnect(code)

    async def on_access_revoked(self) -> None:
        """The owner's socket lost its access: the shell ends with them, "access revoked"."""
        if self.user.pk == self.run.requested_by_id:
            await database_sync_to_async(interactive.shell_end)(
                run_pk=self.run.pk, reason=f"{interactive.ACCESS_REVOKED}.", status=RunStatus.ERROR
            )

    async def publish_state(self) -> None:
        state = await database_sync_to_async(interactive.session_state)(self.run.pk)
        await self.channel_layer.group_send(session_group(self.run.pk), {"type": "session.state", "state": state})

    # -- from the group ------------------------------------------------------------------------

    async def session_state(self, event: dict[str, Any]) -> None:
        self.state = event["state"]
        await self._send_state(self.state)

    async def _send_state(self, state: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({**state, "you": self.user.get_username()}))

    async def run_status(self, event: dict[str, Any]) -> None:
        if event["status"].get("finished") and self.state is not None:
            self.state = {**self.state, "active": False}  # no input after the end, whatever the page says
        await super().run_status(event)

    async def session_notice(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"type": "notice", "text": event["text"]}))

    # -- from the page -------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        limit = int(settings.ECSPORTAL_SHELL_INPUT_FRAME_BYTES)
        if bytes_data is not None or text_data is None:
            await self.close(code=CLOSE_MALFORMED)
            return
        # JSON and base64 of the frame limit's bytes fit in 8 × the limit; anything longer is refused unread.
        if len(text_data) > 8 * limit + 256:
            await self.close(code=CLOSE_TOO_LARGE)
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            await self.close(code=CLOSE_MALFORMED)
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind in ("ack", "status"):
            await super().receive(text_data=text_data)
        elif kind == "input" and isinstance(message.get("data"), str):
            data = message["data"].encode("utf-8", "surrogatepass")
            if len(data) > limit:
                await self.close(code=CLOSE_TOO_LARGE)
                return
            await self.take_input(data)
        elif kind == "resize" and _size(message) is not None:
            await self.take_resize(*_size(message))  # type: ignore[misc]
        elif kind == "keyboard" and (message.get("to") is None or isinstance(message.get("to"), str)):
            await self.hand_keyboard(message.get("to"))
        elif kind == "session":
            await self.tell_state()
        else:
            await self.close(code=CLOSE_MALFORMED)

    async def tell_state(self) -> None:
        """The session's state from the database, to this socket only (a page that asked). The
        socket's own gate (`self.state`) keeps following the group: a read here could be older."""
        now = time.monotonic()
        if not self.seated or now - self.state_asked_at < ASK_EVERY:
            return
        self.state_asked_at = now
        try:
            state = await database_sync_to_async(interactive.session_state)(self.run.pk)
        except Exception as exc:  # the database away: the page asks again in a few seconds
            logger.warning("run %s: reading the session's state for a page failed: %s", self.run.pk, exc)
            return
        await self._send_state(state)

    def may_type(self) -> str:
        """Why this socket's user may not type now ("" when they may): the server's own state."""
        state = self.state
        if state is None or not state.get("active"):
            return "This shell is not running."
        if state.get("holder_id") != self.user.pk:
            holder = state.get("holder") or "nobody"
            return f"{holder} holds the keyboard; you are watching."
        if state.get("paused"):
            return state["paused"]
        if self.user.pk == state.get("owner_id") and self.owner_refusal:
            return self.owner_refusal
        return ""

    async def refuse(self, why: str) -> None:
        """Say why; the same words at most once a second (a held key repeats 30 times a second)."""
        now = time.monotonic()
        if why != self.refused_text or now - self.refused_at >= REFUSED_EVERY:
            self.refused_at, self.refused_text = now, why
            await self.send(text_data=json.dumps({"type": "refused", "text": why}))

    async def take_input(self, data: bytes) -> None:
        why = self.may_type()
        if why:
            await self.refuse(why)
            return
        rate = float(settings.ECSPORTAL_SHELL_INPUT_BYTES_PER_SECOND)
        now = time.monotonic()
        self.allowance = min(rate * BURST_SECONDS, self.allowance + (now - self.filled_at) * rate)
        self.filled_at = now
        if len(data) > self.allowance:
            await self.refuse(
                f"Input too fast: {len(data):,} bytes dropped (the limit is {int(rate):,} bytes a second)."
            )
            return
        self.allowance -= len(data)
        await self.to_runner(
            {
                "type": "shell.input",
                "data": base64.b64encode(data).decode(),
                "user": self.user.pk,
                "username": self.user.get_username(),
            }
        )

    async def take_resize(self, cols: int, rows: int) -> None:
        if self.may_type():
            return  # only the typist's window sizes the terminal; others' resizes are theirs alone
        await self.to_runner({"type": "shell.resize", "cols": cols, "rows": rows, "user": self.user.pk})

    async def to_runner(self, message: dict[str, Any]) -> None:
        """To the runner's input side: directly when it runs on this loop (a keystroke then costs
        no channel-layer message and no queue between the socket and the data channel), else
        through group "shell-<pk>" to whichever process holds the session."""
        inbox = local_inbox(self.run.pk)
        if inbox is not None:
            await inbox.handle(message)
            return
        await self.channel_layer.group_send(shell_group(self.run.pk), message)

    async def hand_keyboard(self, to: str | None) -> None:
        try:
            await database_sync_to_async(interactive.keyboard_hand)(actor=self.user, run_pk=self.run.pk, to_username=to)
        except RunRefused as exc:
            await self.refuse(str(exc))
            return
        await self.publish_state()


def _size(message: dict[str, Any]) -> tuple[int, int] | None:
    cols, rows = message.get("cols"), message.get("rows")
    if type(cols) is not int or type(rows) is not int:
        return None
    if not (2 <= cols <= MAX_COLS and 1 <= rows <= MAX_ROWS):
        return None
    return cols, rows
