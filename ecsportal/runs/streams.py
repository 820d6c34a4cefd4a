"""Each run's output as an append-only stream that any process reads from a sequence number.

The runner appends chunk `seq` here *before* it stores the row (publish before the commit),
rings the run's doorbell (a tiny `run.output` message with the seq, over the channel layer),
and trims what the database holds, keeping the last `KEEP` stored chunks for viewers a
moment behind. A viewer's consumer reads from its last seq: from the stream when it holds
the next chunk, else from the database (which holds everything the stream no longer does:
a chunk leaves the stream only after its row committed). So replay, live output and a slow
viewer are one code path, and a doorbell lost on the way costs nothing: the next one, or
the viewer's own status request, reads everything since.

- `RedisStreams` (REDIS_URL set; any process): one Redis stream per run,
  `<prefix>:run:<pk>:out`, entry ID `<seq>-0`, field `d` the bytes; `XADD … MINID` trims in
  the same call; the key expires a day after its last write and is deleted when the run's
  writer closes, leaving `<key>:end` (the last seq, for a minute).
- `MemoryStreams` (one process): the same in a dict on the runs' event loop.

`ended(pk)`: the last seq of a run whose writer closed with everything published and stored,
for a minute: a viewer that has it and gets the final status needs no database read.

`Doorbells`: the viewers of each run on this loop. A runner rings them directly (a function
call, no channel-layer message); with the in-memory channel layer that is the only doorbell
(every viewer is on this loop), with Redis the layer's doorbell still reaches the viewers on
other processes.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Protocol

from django.conf import settings

KEEP = 16  # stored chunks kept in a stream for viewers a moment behind
EXPIRE_SECONDS = 24 * 3600  # a stream its writer never closed (the process died) goes after this
ENDED_SECONDS = 60  # how long a closed stream's last seq is told (`ended`)


class Streams(Protocol):
    async def append(self, run_pk: int, seq: int, data: bytes, *, stored: int) -> None: ...
    async def read(self, run_pk: int, after: int, *, limit: int) -> list[tuple[int, bytes]]: ...
    async def close(self, run_pk: int, *, last: int | None = None) -> None: ...
    async def ended(self, run_pk: int) -> int | None: ...


class MemoryStreams:
    """The in-process stream: the chunks not yet stored, and the last KEEP stored ones."""

    def __init__(self) -> None:
        self._runs: dict[int, deque[tuple[int, bytes]]] = {}
        self._ended: dict[int, tuple[int, float]] = {}  # run → (last seq, until when it is told)

    async def append(self, run_pk: int, seq: int, data: bytes, *, stored: int) -> None:
        self.append_now(run_pk, seq, data, stored=stored)

    def append_now(self, run_pk: int, seq: int, data: bytes, *, stored: int) -> None:
        """`append` without a coroutine: a writer on this loop publishes from its reader's step."""
        entries = self._runs.setdefault(run_pk, deque())
        entries.append((seq, data))
        self._trim(entries, stored)

    @staticmethod
    def _trim(entries: deque[tuple[int, bytes]], stored: int) -> None:
        while entries and entries[0][0] <= stored - KEEP:
            entries.popleft()

    async def read(self, run_pk: int, after: int, *, limit: int) -> list[tuple[int, bytes]]:
        return self.read_now(run_pk, after, limit=limit)

    def read_now(self, run_pk: int, after: int, *, limit: int) -> list[tuple[int, bytes]]:
        """`read` without a coroutine (a viewer on this loop, once per chunk)."""
        entries = self._runs.get(run_pk)
        if not entries:
            return []
        first = entries[0][0]
        start = max(0, after + 1 - first)
        return [entries[i] for i in range(start, min(len(entries), start + limit))]

    async def close(self, run_pk: int, *, last: int | None = None) -> None:
        self._runs.pop(run_pk, None)
        now = time.monotonic()
        while self._ended and next(iter(self._ended.values()))[1] < now:  # oldest first
            self._ended.pop(next(iter(self._ended)))
        if last is not None:
            self._ended[run_pk] = (last, now + ENDED_SECONDS)

    async def ended(self, run_pk: int) -> int | None:
        last = self._ended.get(run_pk)
        return None if last is None or last[1] < time.monotonic() else last[0]


class RedisStreams:
    """Redis Streams: any process reads what any runner appends."""

    def __init__(self, url: str, prefix: str) -> None:
        from redis.asyncio import BlockingConnectionPool, Redis

        # Blocking: a burst waits for a free connection instead of failing a run (redis-py's
        # default pool raises MaxConnectionsError at 100).
        pool = BlockingConnectionPool.from_url(url, max_connections=50, timeout=30, socket_timeout=15)
        self.redis = Redis(connection_pool=pool)
        self.prefix = prefix

    def key(self, run_pk: int) -> str:
        return f"{self.prefix}:run:{run_pk}:out"

    async def append(self, run_pk: int, seq: int, data: bytes, *, stored: int) -> None:
        key = self.key(run_pk)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"d": data}, id=f"{seq}-0", minid=f"{max(stored - KEEP + 1, 0)}-0", approximate=False)
            pipe.expire(key, EXPIRE_SECONDS)
            await pipe.execute()

    async def read(self, run_pk: int, after: int, *, limit: int) -> list[tuple[int, bytes]]:
        entries = await self.redis.xrange(self.key(run_pk), min=f"{after + 1}-0", count=limit)
        return [(int(entry_id.split(b"-", 1)[0]), fields[b"d"]) for entry_id, fields in entries]

    async def close(self, run_pk: int, *, last: int | None = None) -> None:
        key = self.key(run_pk)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(key)
            if last is not None:
                pipe.set(f"{key}:end", last, ex=ENDED_SECONDS)
            await pipe.execute()

    async def ended(self, run_pk: int) -> int | None:
        last = await self.redis.get(f"{self.key(run_pk)}:end")
        return None if last is None else int(last)


class Doorbells:
    """This loop's viewers of each run: `ring(run_pk, seq)` calls each one's callback at once."""

    def __init__(self) -> None:
        self._viewers: dict[int, set[Callable[[int], None]]] = {}

    def watch(self, run_pk: int, ring: Callable[[int], None]) -> None:
        self._viewers.setdefault(run_pk, set()).add(ring)

    def unwatch(self, run_pk: int, ring: Callable[[int], None]) -> None:
        viewers = self._viewers.get(run_pk)
        if viewers is not None:
            viewers.discard(ring)
            if not viewers:
                del self._viewers[run_pk]

    def ring(self, run_pk: int, seq: int) -> None:
        for ring in tuple(self._viewers.get(run_pk, ())):
            ring(seq)


_doorbells: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Doorbells] = weakref.WeakKeyDictionary()


def doorbells() -> Doorbells:
    """This loop's doorbells."""
    loop = asyncio.get_running_loop()
    bells = _doorbells.get(loop)
    if bells is None:
        bells = _doorbells[loop] = Doorbells()
    return bells


_memory: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MemoryStreams] = weakref.WeakKeyDictionary()
_redis: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RedisStreams] = weakref.WeakKeyDictionary()


def output_streams() -> Streams:
    """This loop's streams: Redis when REDIS_URL is set, else in memory (one process)."""
    loop = asyncio.get_running_loop()
    url = getattr(settings, "REDIS_URL", "")
    if url:
        streams = _redis.get(loop)
        if streams is None:
            config = settings.CHANNEL_LAYERS.get("default", {}).get("CONFIG", {})
            prefix = config.get("prefix", "ecsportal")
            streams = _redis[loop] = RedisStreams(url, prefix)
        return streams
    memory = _memory.get(loop)
    if memory is None:
        memory = _memory[loop] = MemoryStreams()
    return memory
