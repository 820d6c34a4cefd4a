"""Requests per token per minute: in Redis when REDIS_URL is set (shared by every process),
else in this process. A fixed one-minute window: simple, and a burst at a window's edge costs at
most twice the limit for a moment, which is all this guards against (a runaway script)."""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings

logger = logging.getLogger(__name__)
WINDOW = 60

_lock = threading.Lock()
_local: dict[tuple[str, int], int] = {}
_redis = None


def _client():
    global _redis
    if _redis is None:
        import redis

        _redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    return _redis


def _count_local(key: tuple[str, int]) -> int:
    with _lock:
        if len(_local) > 10_000:  # old windows: drop them
            for old in [k for k in _local if k[1] < key[1]]:
                del _local[old]
        _local[key] = _local.get(key, 0) + 1
        return _local[key]


def throttle_check(*, token_key: str, now: float | None = None) -> int | None:
    """None if the call may go on, else the seconds to wait (Retry-After). `token_key`: the
    token's prefix (random, never reused, unlike a primary key after a rollback)."""
    limit = settings.ECSPORTAL_API_REQUESTS_PER_MINUTE
    if limit <= 0:
        return None
    now = time.time() if now is None else now
    window = int(now // WINDOW)
    count = None
    if settings.REDIS_URL:
        prefix = settings.ECSPORTAL_CHANNEL_PREFIX
        key = f"{prefix}:api-throttle:{token_key}:{window}"
        try:
            pipe = _client().pipeline()
            pipe.incr(key)
            pipe.expire(key, WINDOW * 2)
            count = pipe.execute()[0]
        except Exception as exc:  # Redis away: count here rather than refuse every call
            logger.warning("API throttle: Redis unavailable (%s); counting in this process", type(exc).__name__)
    if count is None:
        count = _count_local((token_key, window))
    if count <= limit:
        return None
    return max(1, int((window + 1) * WINDOW - now) + 1)
