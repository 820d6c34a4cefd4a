"""Open WebSockets per user, across the deployment (ECSPORTAL_SOCKETS_PER_USER).

Every live page holds a socket or two, and each costs the server memory and a group in the
channel layer; a script (or a forgotten wall of tabs) could open thousands. `PortalConsumer`
takes a place here at connect and gives it back at disconnect; a socket over the limit is
accepted and closed at once with CLOSE_TOO_MANY_SOCKETS, so the page can say why (a socket
refused before its handshake would reach the browser as a bare 1006).

Two ledgers, chosen as the channel layer is:

- one process (no Redis): a set of channel names per user, in memory; exact.
- Redis: one sorted set per user, `<prefix>:sockets:<user pk>`, each member a socket's channel
  name scored with the time its place lapses. Taking a place is one Lua script (drop lapsed
  places, count, add), so two processes cannot both take the last place. Each process renews
  the places of its open sockets every RENEW_SECONDS for TTL_SECONDS; a process that dies
  without giving its places back holds them at most TTL_SECONDS longer.

When Redis cannot be asked, the socket is let through (and logged): the limit guards memory,
it must not take the live pages down with Redis (which the sockets need anyway).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import defaultdict

from django.conf import settings

logger = logging.getLogger(__name__)

TTL_SECONDS = 120.0
RENEW_SECONDS = 30.0

_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


def socket_limit() -> int:
    return settings.ECSPORTAL_SOCKETS_PER_USER


class LocalLedger:
    """One process: the open sockets of each user, by channel name. Kept per event loop (a
    server has one; a socket cannot outlive its loop, so a closed loop's places go with it)."""

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def held(self) -> dict[int, set[str]]:
        """User pk → the channel names holding a place, on the running loop."""
        loop = asyncio.get_running_loop()
        if loop not in self._by_loop:
            self._by_loop[loop] = defaultdict(set)
        return self._by_loop[loop]

    async def take(self, *, user_pk: int, channel: str, limit: int) -> bool:
        held = self.held()[user_pk]
        if channel not in held and len(held) >= limit:
            return False
        held.add(channel)
        return True

    async def give_back(self, *, user_pk: int, channel: str) -> None:
        by_user = self.held()
        held = by_user.get(user_pk)
        if held is not None:
            held.discard(channel)
            if not held:
                del by_user[user_pk]


class RedisLedger:
    """Several processes: a sorted set per user in Redis, places renewed by their process."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self._held: dict[int, set[str]] = defaultdict(set)  # this process's places, for renewal
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop → client
        self._renewers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def held(self) -> dict[int, set[str]]:
        """The places this process holds, by user (as `LocalLedger.held`)."""
        return self._held

    def key(self, user_pk: int) -> str:
        return f"{self.prefix}:sockets:{user_pk}"

    def _client(self):
        import redis.asyncio as redis

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)
            self._clients[loop] = client
        if loop not in self._renewers:
            self._renewers[loop] = loop.create_task(self._renew_forever(client))
        return client

    async def take(self, *, user_pk: int, channel: str, limit: int) -> bool | None:
        now = time.time()
        try:
            taken = await self._client().eval(
                _TAKE, 1, self.key(user_pk), now, now + TTL_SECONDS, limit, channel, int(TTL_SECONDS) + 1
            )
        except Exception as exc:  # any Redis failure: let the socket through
            logger.warning("socket budget: Redis unavailable, not counting this socket: %s", exc)
            return None
        if taken:
            self._held[user_pk].add(channel)
        return bool(taken)

    async def give_back(self, *, user_pk: int, channel: str) -> None:
        held = self._held.get(user_pk)
        if held is not None:
            held.discard(channel)
            if not held:
                del self._held[user_pk]
        try:
            await self._client().zrem(self.key(user_pk), channel)
        except Exception as exc:  # the place lapses by itself within TTL_SECONDS
            logger.warning("socket budget: could not give a place back (it lapses by itself): %s", exc)

    async def renew(self, client: object | None = None) -> None:
        """Push the lapse time of every place this process holds (one round trip)."""
        if not self._held:
            return
        client = client or self._client()
        lapse = time.time() + TTL_SECONDS
        async with client.pipeline(transaction=False) as pipe:
            for user_pk, channels in list(self._held.items()):
                key = self.key(user_pk)
                pipe.zadd(key, dict.fromkeys(channels, lapse), xx=True)
                pipe.expire(key, int(TTL_SECONDS) + 1)
            await pipe.execute()

    async def _renew_forever(self, client: object) -> None:
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            try:
                await self.renew(client)
            except Exception as exc:  # try again next round; a place lapses only after TTL
                logger.warning("socket budget: renewing places failed: %s", exc)


_ledger: tuple[str, LocalLedger | RedisLedger] | None = None


def ledger() -> LocalLedger | RedisLedger:
    """The ledger for the configured channel layer (rebuilt if the settings change, as in tests)."""
    global _ledger
    url = settings.REDIS_URL
    if _ledger is None or _ledger[0] != url:
        if url:
            prefix = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix", "ecsportal")
            _ledger = (url, RedisLedger(url, prefix))
        else:
            _ledger = (url, LocalLedger())
    return _ledger[1]


async def socket_take(*, user_pk: int, channel: str) -> bool | None:
    """True: a place is taken for this socket (give it back at disconnect); False: the user
    already holds the limit; None: not counted (no limit set, or Redis unreachable)."""
    limit = socket_limit()
    if limit <= 0:
        return None
    return await ledger().take(user_pk=user_pk, channel=channel, limit=limit)


async def socket_give_back(*, user_pk: int, channel: str) -> None:
    await ledger().give_back(user_pk=user_pk, channel=channel)
