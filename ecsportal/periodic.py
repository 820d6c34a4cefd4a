"""Background jobs that repeat inside a server process (stopped-task collection, approval housekeeping).

Started from `asgi.py` only, never from AppConfig.ready, so tests and management commands start
no threads. Each job runs with fresh database connections and its failures are logged, never
raised: one bad pass must not end the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.db import close_old_connections, connection

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_threads: dict[str, threading.Thread] = {}


def start_periodic(
    *, name: str, interval: float, job: Callable[[], object], first_delay: float
) -> threading.Thread | None:
    """Run `job` every `interval` seconds on one daemon thread per `name` and process; 0 = off."""
    if interval <= 0:
        return None
    with _lock:
        if name not in _threads:
            _threads[name] = threading.Thread(
                target=_loop, args=(name, interval, job, first_delay), name=name, daemon=True
            )
            _threads[name].start()
        return _threads[name]


def _loop(name: str, interval: float, job: Callable[[], object], first_delay: float) -> None:
    time.sleep(first_delay)
    while True:
        close_old_connections()
        try:
            job()
        except Exception:
            logger.exception("periodic job %s failed", name)
        finally:
            connection.close()
        time.sleep(interval)
