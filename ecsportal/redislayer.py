"""channels_redis's layer on a connection pool that waits instead of failing.

redis-py's asyncio `ConnectionPool` (what channels_redis builds from the host's address) raises
`MaxConnectionsError` the moment a process wants more than `max_connections` sockets at once
(100 by default): a runs worker publishing the output of ~100 busy runs concurrently reached
it, and each publish that hit it failed its run. `BlockingConnectionPool` makes the excess wait
(up to the host's `timeout`, ECSPORTAL_REDIS_POOL_WAIT_SECONDS) for a connection another
publish gives back, so a burst costs latency, never a run. The host dict's other keys
(`socket_timeout`, `max_connections`) are passed to the pool as channels_redis passes them.

After a Redis restart every pooled socket is dead, and redis-py's pool connections retry
nothing by default: the first command on each failed ("Connection closed by server"), which
refused a run at the door. Here a command that fails to connect or loses its connection is
tried again on a new one, a few times over about a second; longer outages are the callers'
to outlast (the runs worker's listener, `dispatcher.publish`).
"""

from __future__ import annotations

from channels_redis import core
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


class RedisChannelLayer(core.RedisChannelLayer):
    def create_pool(self, index: int) -> BlockingConnectionPool:
        host = dict(self.hosts[index])
        address = host.pop("address", None)
        if address is None:  # host/port or sentinels: channels_redis's own pools
            return super().create_pool(index)
        host.setdefault("retry", Retry(ExponentialBackoff(cap=0.5, base=0.05), 4))
        host.setdefault("retry_on_error", [RedisConnectionError, ConnectionError, OSError])
        return BlockingConnectionPool.from_url(address, **host)
