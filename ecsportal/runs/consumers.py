"""The live view of a run: `ws/runs/<pk>/?after=<seq>`.

One code path for replay, live output and a slow viewer: `pump()` sends every chunk after the
last one sent, in order, from the run's output stream when it holds the next chunk, else from
the database (a chunk leaves the stream only after its row committed, so the one or the other
has it). A doorbell (`run.output` with a seq, from the runner) only says "there is more";
one that is lost costs nothing, the next one (or the viewer's status request) reads all.

Bounded memory per socket: at most `WINDOW` bytes are sent beyond what the viewer has
acknowledged (`{"type": "ack", "seq": n}`, which run-terminal.js sends every 256 KB it
receives); past it the socket waits, and resumes from the stream or the database when the
acks come. A viewer that reads nothing costs the server nothing more than that.

The final status is sent only once every chunk before it has been (a viewer that has the
"finished" status stops listening). A viewer that has heard nothing for a while asks for
the status itself (`{"type": "status"}`): the database answers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qs

from channels.db import aclose_old_connections, database_sync_to_async
from django.core.exceptions import PermissionDenied
from django.http import Http404

from ecsportal.accounts.models import Role
from ecsportal.accounts.sockets import PortalConsumer
from ecsportal.runs.lifecycle import status_payload
from ecsportal.runs.models import Run
from ecsportal.runs.selectors import run_chunks, run_get_for_user
from ecsportal.runs.streams import MemoryStreams, doorbells, output_streams

logger = logging.getLogger(__name__)

REPLAY_PAGE = 200  # chunks read per query from the database
STREAM_PAGE = 64  # entries read per call from the stream
# Bytes sent and not yet acknowledged before the socket waits. Sent as base64 in JSON, the
# window costs the server about 1.4 times this per viewer that reads nothing: at 4 MB, ten such
# viewers of one shell grew the server by 47-100 MB (interactive.py; budget 64 MB); at 2 MB a
# reading viewer still has eight of its 256 KB acks in flight.
WINDOW = 2 * 1024 * 1024
ASK_EVERY = 1.0  # seconds between two status requests a viewer's socket is answered


def _authorise(user: Any, pk: int) -> Run | None:
    try:
        run = run_get_for_user(user=user, run_pk=pk, min_role=Role.VIEWER)
    except (Http404, PermissionDenied):
        return None
    return run


def _chunks(run: Run, after: int) -> list[tuple[int, bytes]]:
    return [(c.seq, bytes(c.data)) for c in run_chunks(run=run, after=after, limit=REPLAY_PAGE)]


def _status(pk: int) -> dict[str, Any] | None:
    run = Run.objects.filter(pk=pk).first()
    return None if run is None else status_payload(run)


class RunConsumer(PortalConsumer):
    run: Run
    last_seq: int
    rung = 0  # the highest seq a doorbell announced
    asked_at = float("-inf")

    async def authorise(self, user: Any) -> list[str] | None:
        pk = int(self.scope["url_route"]["kwargs"]["pk"])
        run = await database_sync_to_async(_authorise)(user, pk)
        if run is None:
            return None
        self.run = run
        return [f"run-{pk}"]

    async def on_open(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            after = max(0, int(query.get("after", ["0"])[0]))
        except ValueError:
            after = 0
        self.last_seq = after
        self.unacked: deque[tuple[int, int]] = deque()  # (seq, bytes) sent, not yet acknowledged
        self.unacked_bytes = 0
        self.final: dict[str, Any] | None = None  # a finished status held back until the output is out
        self.replayed = False
        self.streams = output_streams()
        self._pumping = asyncio.Lock()  # one pump at a time: a doorbell's task, or a message's
        self._rung_task: asyncio.Task | None = None
        self._bells = doorbells()
        self._bells.watch(self.run.pk, self.ring)
        status = await database_sync_to_async(_status)(self.run.pk)
        if status is not None and not status["finished"]:
            await self.send(text_data=json.dumps(status))
        elif status is not None:
            self.final = status
        await self.pump(replaying=True)
        await aclose_old_connections()

    def ring(self, seq: int) -> None:
        """A runner on this loop published chunk `seq` (a direct call, not a channel message)."""
        if seq > self.rung:
            self.rung = seq
        if self.rung > self.last_seq and self._rung_task is None:
            self._rung_task = asyncio.get_running_loop().create_task(self._answer_ring())

    async def _answer_ring(self) -> None:
        self._rung_task = None  # a doorbell from now on starts another pump after this one
        try:
            async with self._pumping:  # after the replay, if one is going on: it may have missed it
                if self.replayed:
                    await self._pump()
        except Exception as exc:  # the socket went meanwhile: its disconnect cleans up
            logger.info("run %s: a viewer's pump failed: %s", self.run.pk, exc)

    async def pump(self, *, replaying: bool = False, look: bool = False) -> None:
        async with self._pumping:
            await self._pump(replaying=replaying, look=look)

    async def _pump(self, *, replaying: bool = False, look: bool = False) -> None:
        """Send every chunk after the last one sent, within the window; then what was held back.

        The database is read only when the stream lacks a chunk that exists: on the replay, once
        the run has finished, when the stream starts past the next seq (trimmed), or when a
        doorbell named a seq the stream does not hold (Redis away), or when the viewer asks
        (`look`: it has heard nothing for a while, so doorbells may have been lost). Live, a doorbell whose
        chunks the stream has costs no database query (each once cost a trip to the thread
        that every database call of the process shares, for every line and every viewer)."""
        while self.unacked_bytes < WINDOW:
            if self.last_seq >= self.rung and not (replaying or look or self.final is not None):
                break  # all that the doorbells announced is sent
            if isinstance(self.streams, MemoryStreams):  # a plain call: no coroutine per chunk
                entries = self.streams.read_now(self.run.pk, self.last_seq, limit=STREAM_PAGE)
            else:
                entries = await self.streams.read(self.run.pk, self.last_seq, limit=STREAM_PAGE)
            if not (entries and entries[0][0] == self.last_seq + 1):
                if self.final is not None:
                    last = await self.streams.ended(self.run.pk)
                    if last is not None and last <= self.last_seq:
                        break  # the run's writer closed after this chunk: nothing more to read
                entries = await database_sync_to_async(_chunks)(self.run, self.last_seq)
                if not entries:
                    break
            before = self.last_seq
            for seq, data in entries:
                if seq != self.last_seq + 1 or self.unacked_bytes >= WINDOW:
                    break
                await self.send_output(seq, data)
            if self.last_seq == before:
                break  # nothing follows on yet (a chunk neither stored nor streamed): the next doorbell
        else:
            return  # the window is full: the viewer's acks resume it
        if replaying:
            await self.send(text_data=json.dumps({"type": "replayed", "seq": self.last_seq}))
            self.replayed = True
        if self.final is not None and self.replayed:
            final, self.final = self.final, None
            await self.send(text_data=json.dumps(final))

    async def send_output(self, seq: int, data: bytes) -> None:
        # The JSON by hand: a seq and base64 (A–Z, a–z, 0–9, +, /, =) need no escaping, and
        # this is the one message sent per chunk per viewer; straight to `base_send`, past the
        # two wrappers of `send(text_data=…)` that only build this message.
        text = f'{{"type": "output", "seq": {int(seq)}, "data": "{base64.b64encode(data).decode()}"}}'
        await self.base_send({"type": "websocket.send", "text": text})
        self.last_seq = seq
        self.unacked.append((seq, len(data)))
        self.unacked_bytes += len(data)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Doorbells skip Channels' per-message `aclose_old_connections()`: that is a hop to the
        one thread Django's database calls share, for every chunk to every socket, and
        `run_output` needs no database unless it reads behind the stream (whose
        `database_sync_to_async` calls close old connections themselves)."""
        if message.get("type") == "run.output":
            await self.run_output(message)
            return
        await super().dispatch(message)

    async def disconnect(self, code: int) -> None:
        self._stop_watching()
        await super().disconnect(code)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:  # also when cancelled without a disconnect: no doorbell for a socket that is gone
            self._stop_watching()

    def _stop_watching(self) -> None:
        bells = getattr(self, "_bells", None)
        if bells is not None:
            bells.unwatch(self.run.pk, self.ring)
            self._bells = None
        task, self._rung_task = getattr(self, "_rung_task", None), None
        if task is not None:
            task.cancel()

    async def run_output(self, event: dict[str, Any]) -> None:
        self.rung = max(self.rung, int(event["seq"]))
        if self.rung > self.last_seq and self.replayed:
            await self.pump()

    async def run_status(self, event: dict[str, Any]) -> None:
        await self.send_status(event["status"])

    async def send_status(self, status: dict[str, Any]) -> None:
        if not status.get("finished"):
            await self.send(text_data=json.dumps(status))
            return
        self.final = status  # after the last chunks, should any still be on their way
        if self.replayed:
            await self.pump()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Viewers are read-only (cancel is an HTTP POST with CSRF). A viewer may say two things:
        `{"type": "ack", "seq": n}` (it has received up to n) and `{"type": "status"}` (it has
        heard nothing for a while: it gets the output it lacks, then the status from the
        database, at most once a second). Anything else is ignored."""
        if not text_data or len(text_data) > 64:
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            return
        if not isinstance(message, dict) or not hasattr(self, "unacked"):
            return
        if message.get("type") == "ack" and isinstance(message.get("seq"), int):
            await self.acknowledged(message["seq"])
        elif message.get("type") == "status":
            now = time.monotonic()
            if now - self.asked_at < ASK_EVERY:
                return
            self.asked_at = now
            if self.replayed:
                await self.pump(look=True)  # the output it lacks, should doorbells have been lost
            status = await database_sync_to_async(_status)(self.run.pk)
            if status is not None:
                await self.send_status(status)

    async def acknowledged(self, seq: int) -> None:
        full = self.unacked_bytes >= WINDOW
        while self.unacked and self.unacked[0][0] <= seq:
            self.unacked_bytes -= self.unacked.popleft()[1]
        if full and self.unacked_bytes < WINDOW:
            await self.pump(replaying=not self.replayed)
