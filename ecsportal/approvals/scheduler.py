"""Housekeeping for the approval gate in the server process: fail abandoned executions and
record the expiry of requests whose time ran out.

Started once per process from `asgi.py`; the database lease "approvals-housekeeping" lets one
process of the deployment sweep (periodic.py). `ECSPORTAL_APPROVAL_SWEEP_SECONDS=0` turns it off.
"""

from __future__ import annotations

import logging

from django.conf import settings

from ecsportal.approvals.services import approval_fail_abandoned, approvals_expire_due
from ecsportal.periodic import PeriodicJob, start_periodic

logger = logging.getLogger(__name__)


def _sweep() -> None:
    approvals_expire_due()
    failed = approval_fail_abandoned()
    if failed:
        logger.warning("marked %s abandoned approval execution(s) as failed", failed)


def start_housekeeping() -> PeriodicJob | None:
    interval = float(getattr(settings, "ECSPORTAL_APPROVAL_SWEEP_SECONDS", 0))
    return start_periodic(
        name="approvals-housekeeping", interval=interval, job=_sweep, first_delay=interval, lease=True
    )
