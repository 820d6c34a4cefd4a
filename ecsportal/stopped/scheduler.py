"""The periodic collector inside the embedded server ("Refresh now" runs start in the collector).

`start_periodic_collector()` is called once from asgi.py (never from AppConfig.ready, so tests
and management commands do not start threads). Every process starts it; the database lease
"stopped-periodic" lets one process of the deployment collect (periodic.py). Deployments may
instead set ECSPORTAL_STOPPED_COLLECT_INTERVAL=0 and run `manage.py collect_stopped_tasks --loop`.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from ecsportal.periodic import PeriodicJob, start_periodic
from ecsportal.stopped.collector import stopped_collect
from ecsportal.stopped.models import CollectionRun
from ecsportal.stopped.services import stopped_prune
from ecsportal.stopped.status import collection_run_active

FIRST_RUN_DELAY = 10.0  # seconds: let the server answer its first requests before collecting


def collect_if_due(*, interval: float) -> bool:
    """One periodic pass unless a run is going or one finished within half an interval."""
    recent = timezone.now() - timedelta(seconds=interval / 2)
    if collection_run_active() is not None or CollectionRun.objects.filter(finished_at__gte=recent).exists():
        return False
    stopped_collect(trigger=CollectionRun.Trigger.PERIODIC)
    stopped_prune()
    return True


def start_periodic_collector() -> PeriodicJob | None:
    """Start the periodic collector once per process; a no-op when the interval is 0."""
    interval = float(getattr(settings, "ECSPORTAL_STOPPED_COLLECT_INTERVAL", 0))
    return start_periodic(
        name="stopped-periodic",
        interval=interval,
        job=lambda: collect_if_due(interval=interval),
        first_delay=min(FIRST_RUN_DELAY, interval),
        lease=True,
    )
