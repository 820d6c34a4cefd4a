"""The sweep for runs whose runner was lost, started once per process from asgi.py.

asgi.py is loaded by every daphne process and by `manage.py runworker ecsportal-runs`, so every
process starts it; the database lease "runs-sweep" lets one of them sweep at a time (periodic.py),
and another takes over within three intervals when that process dies. It runs soon after the
process starts (runs left active by a process that died end as "runner lost") and then every
ECSPORTAL_RUN_SWEEP_SECONDS; it also ends runs whose approval closed without the approvals
hook reaching them (a process that died in between).

The bound: a run whose runner died is ended ERROR "Runner lost" at most
ECSPORTAL_RUN_STALE_SECONDS + ECSPORTAL_RUN_SWEEP_SECONDS after its last heartbeat, while another
process is up (the lease holder may be the process that died: its lease lapses after twice the
sweep interval, so keep STALE ≥ 2 × SWEEP, as the defaults 60 and 30 do). A run still QUEUED
(no runner took it: no worker up, or its message expired in the channel layer after 60 s) ends
the same way, STALE + SWEEP seconds after it was queued.
"""

from __future__ import annotations

import threading

from django.conf import settings

from ecsportal.periodic import start_periodic
from ecsportal.runs.lifecycle import runs_end_stale

FIRST_SWEEP_DELAY = 2.0


def sweep() -> int:
    return runs_end_stale()


def start_run_sweep() -> threading.Thread | None:
    interval = float(getattr(settings, "ECSPORTAL_RUN_SWEEP_SECONDS", 0))
    return start_periodic(name="runs-sweep", interval=interval, job=sweep, first_delay=FIRST_SWEEP_DELAY, lease=True)
