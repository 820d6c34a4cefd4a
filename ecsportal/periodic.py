"""Background jobs that repeat inside a server process (stopped-task collection, approval housekeeping).

Started from `asgi.py` only, never from AppConfig.ready, so tests and management commands start
no threads. Each job runs with fresh database connections and its failures are logged, never
raised: one bad pass must not end the loop. `PeriodicJob.stop()` ends the loop between passes
(tests stop every job they start; a server lets the daemon thread die with the process).

Every process of a deployment starts the same jobs; with `lease=True` a pass runs only in the
process that holds the job's database lease (`ecsportal.leases`), so the job runs once per
deployment. The holder renews the lease before and after each pass for twice the interval; when it stops
renewing (its process died), another process takes the lease over at its first pass after
the lease expired, that is within three intervals. The jobs stay correct if two passes ever
overlap (every write they make is conditional): the lease saves work, it is not a lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import close_old_connections, connection

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_jobs: dict[str, PeriodicJob] = {}


@dataclass
class PeriodicJob:
    name: str
    interval: float
    job: Callable[[], object]
    first_delay: float
    lease: bool = False
    thread: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    def stop(self, timeout: float = 10.0) -> bool:
        """Ask the loop to end (a pass under way finishes first); True once the thread has ended."""
        self._stopping.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout)
        with _lock:
            if _jobs.get(self.name) is self:
                del _jobs[self.name]
        return self.thread is None or not self.thread.is_alive()

    @property
    def is_running(self) -> bool:
        return self.thread is not None and self.thread.is_alive() and not self._stopping.is_set()

    @property
    def lease_seconds(self) -> float:
        return 2 * self.interval

    def _loop(self) -> None:
        if self._stopping.wait(self.first_delay):
            return
        try:
            while True:
                close_old_connections()
                try:
                    if self._holds_lease():
                        self.job()
                        self._holds_lease()  # renewed after a long pass too, so the next wait is covered
                except Exception:
                    logger.exception("periodic job %s failed", self.name)
                finally:
                    connection.close()
                if self._stopping.wait(self.interval):
                    return
        finally:
            self._release_lease()

    def _holds_lease(self) -> bool:
        if not self.lease:
            return True
        from ecsportal.leases.services import lease_take

        return lease_take(self.name, ttl=self.lease_seconds)

    def _release_lease(self) -> None:
        if not self.lease:
            return
        from ecsportal.leases.services import lease_release

        try:
            lease_release(self.name)
        except Exception:
            logger.exception("periodic job %s: could not release its lease", self.name)
        finally:
            connection.close()


def start_periodic(
    *, name: str, interval: float, job: Callable[[], object], first_delay: float, lease: bool = False
) -> PeriodicJob | None:
    """Run `job` every `interval` seconds on one daemon thread per `name` and process; 0 = off.

    With `lease`, only the process holding the lease `name` runs the pass (once per deployment).
    """
    if interval <= 0:
        return None
    with _lock:
        if name not in _jobs:
            periodic = PeriodicJob(name=name, interval=interval, job=job, first_delay=first_delay, lease=lease)
            periodic.thread = threading.Thread(target=periodic._loop, name=name, daemon=True)
            _jobs[name] = periodic
            periodic.thread.start()
        return _jobs[name]
