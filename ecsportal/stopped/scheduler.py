"""Background collection inside the embedded server: "Refresh now" runs and the periodic loop.

`start_periodic_collector()` is called once from asgi.py (never from AppConfig.ready, so tests
and management commands do not start threads). Deployments with several server processes set
ECSPORTAL_STOPPED_COLLECT_INTERVAL=0 and run `manage.py collect_stopped_tasks --loop` once.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from ecsportal.periodic import start_periodic

logger = logging.getLogger(__name__)

FIRST_RUN_DELAY = 10.0  # seconds: let the server answer its first requests before collecting


def run_in_background(*, run_pk: int) -> threading.Thread:
    """Execute an already created run on a daemon thread (the page polls its progress)."""
    thread = threading.Thread(target=_execute, args=(run_pk,), name=f"stopped-run-{run_pk}", daemon=True)
    thread.start()
    return thread


def _execute(run_pk: int) -> None:
    from ecsportal.stopped.collector import collection_execute
    from ecsportal.stopped.models import CollectionRun

    try:
        collection_execute(run=CollectionRun.objects.get(pk=run_pk))
    except Exception:
        logger.exception("stopped-task collection %s failed", run_pk)
    finally:
        connection.close()


def collect_if_due(*, interval: float) -> bool:
    """One periodic pass unless a run is going or one finished within half an interval."""
    from ecsportal.stopped.collector import stopped_collect
    from ecsportal.stopped.models import CollectionRun
    from ecsportal.stopped.services import collection_run_active, stopped_prune

    recent = timezone.now() - timedelta(seconds=interval / 2)
    if collection_run_active() is not None or CollectionRun.objects.filter(finished_at__gte=recent).exists():
        return False
    stopped_collect(trigger=CollectionRun.Trigger.PERIODIC)
    stopped_prune()
    return True


def start_periodic_collector() -> threading.Thread | None:
    """Start the periodic collector once per process; a no-op when the interval is 0."""
    interval = float(getattr(settings, "ECSPORTAL_STOPPED_COLLECT_INTERVAL", 0))
    return start_periodic(
        name="stopped-periodic",
        interval=interval,
        job=lambda: collect_if_due(interval=interval),
        first_delay=min(FIRST_RUN_DELAY, interval),
    )
