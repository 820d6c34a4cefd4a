"""The sweep for runs whose runner was lost, started once per process from asgi.py.

It runs soon after the server starts (runs left active by a previous process end as "runner
lost") and then every ECSPORTAL_RUN_SWEEP_SECONDS; it also settles runs whose approval ended.
"""

from __future__ import annotations

import threading

from django.conf import settings

from ecsportal.periodic import start_periodic

FIRST_SWEEP_DELAY = 2.0


def sweep() -> int:
    from ecsportal.runs.services import runs_end_stale

    return runs_end_stale()


def start_run_sweep() -> threading.Thread | None:
    interval = float(getattr(settings, "ECSPORTAL_RUN_SWEEP_SECONDS", 0))
    return start_periodic(name="runs-sweep", interval=interval, job=sweep, first_delay=FIRST_SWEEP_DELAY)
