"""Housekeeping for the approval gate in the server process: fail abandoned executions.

Started once per process from `asgi.py` (never from AppConfig.ready, so tests and management
commands do not start it); `ECSPORTAL_APPROVAL_SWEEP_SECONDS=0` turns it off.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connection

from ecsportal.approvals.services import approval_fail_abandoned

logger = logging.getLogger(__name__)
_started: threading.Thread | None = None
_lock = threading.Lock()


def _loop(interval: float) -> None:
    while True:
        time.sleep(interval)
        close_old_connections()
        try:
            failed = approval_fail_abandoned()
            if failed:
                logger.warning("marked %s abandoned approval execution(s) as failed", failed)
        except Exception:
            logger.exception("approval housekeeping failed")
        finally:
            connection.close()


def start_housekeeping() -> threading.Thread | None:
    global _started
    interval = float(getattr(settings, "ECSPORTAL_APPROVAL_SWEEP_SECONDS", 0))
    if interval <= 0:
        return None
    with _lock:
        if _started is None:
            _started = threading.Thread(target=_loop, args=(interval,), name="approvals-housekeeping", daemon=True)
            _started.start()
    return _started
