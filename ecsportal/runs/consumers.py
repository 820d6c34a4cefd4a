"""The live view of a run: `ws/runs/<pk>/?after=<seq>`.

The seam between the stored transcript and the live stream has no gap and no duplicate:

1. the socket joins the group `run-<pk>` before anything is read (PortalConsumer.connect), so
   every chunk published from then on is queued for it;
2. it sends the stored chunks with seq > after, then `replayed`;
3. the queued live chunks are handled only afterwards (a consumer handles one message at a
   time), and each is sent only if its seq is the next one: older ones were in the replay,
   and a jump (a message the channel layer dropped for a slow socket) is filled from the
   database, where the runner stores every chunk before publishing it.
"""

from __future__ import annotations

import base64
import json
import time
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

REPLAY_PAGE = 200  # chunks read per query while replaying
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
        status = await database_sync_to_async(_status)(self.run.pk)
        if status is not None:
            await self.send(text_data=json.dumps(status))
        await self.catch_up()
        await self.send(text_data=json.dumps({"type": "replayed", "seq": self.last_seq}))
        await aclose_old_connections()

    async def catch_up(self) -> None:
        """Send every stored chunk after the last one sent."""
        while True:
            chunks = await database_sync_to_async(_chunks)(self.run, self.last_seq)
            for seq, data in chunks:
                await self.send_output(seq, data)
            if len(chunks) < REPLAY_PAGE:
                return

    async def send_output(self, seq: int, data: bytes) -> None:
        await self.send(text_data=json.dumps({"type": "output", "seq": seq, "data": base64.b64encode(data).decode()}))
        self.last_seq = seq

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Live output skips Channels' per-message `aclose_old_connections()`: that is a hop to
        the one thread Django's database calls share, for every chunk to every socket, and
        `run_output` needs no database unless it fills a gap (whose `database_sync_to_async`
        calls close old connections themselves)."""
        if message.get("type") == "run.output":
            await self.run_output(message)
            return
        await super().dispatch(message)

    async def run_output(self, event: dict[str, Any]) -> None:
        seq = int(event["seq"])
        if seq <= self.last_seq:
            return  # already sent in the replay
        if seq > self.last_seq + 1:
            await self.catch_up()  # a gap: the missing chunks are in the database already
            if seq <= self.last_seq:
                return
        await self.send_output(seq, bytes(event["data"]))

    async def run_status(self, event: dict[str, Any]) -> None:
        if event["status"].get("finished"):
            await self.catch_up()  # the last chunks, should any have been dropped
        await self.send(text_data=json.dumps(event["status"]))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Viewers are read-only (cancel is an HTTP POST with CSRF); the one thing a viewer may
        say is `{"type": "status"}`, after hearing nothing for a while: the stored output it
        lacks, then the status, from the database, at most once a second. Anything else is ignored."""
        if not text_data or len(text_data) > 64:
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            return
        if not isinstance(message, dict) or message.get("type") != "status":
            return
        now = time.monotonic()
        if now - self.asked_at < ASK_EVERY:
            return
        self.asked_at = now
        await self.catch_up()
        status = await database_sync_to_async(_status)(self.run.pk)
        if status is not None:
            await self.send(text_data=json.dumps(status))
