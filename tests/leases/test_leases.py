"""Database leases: one holder at a time, renewed by its holder, passed on when it expires.

Holders are named explicitly (two "processes" in one test); the clock is passed in, so no test
sleeps for a lease to expire. The race runs on PostgreSQL with real connections (SQLite
serialises writers and cannot show it); there it skips, and fails under CI.
"""

from __future__ import annotations

import os
import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from ecsportal.leases.models import Lease
from ecsportal.leases.services import lease_holder, lease_release, lease_take, process_id
from ecsportal.periodic import start_periodic

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_holders_compete_one_wins_and_the_lease_passes_on_after_it_expires():
    now = timezone.now()
    assert lease_take("sweep", ttl=60, holder="process-a", now=now)
    assert not lease_take("sweep", ttl=60, holder="process-b", now=now)
    assert lease_holder("sweep", now=now) == "process-a"

    # a renews while it lives, so b keeps losing, even after a's first term would have ended
    assert lease_take("sweep", ttl=60, holder="process-a", now=now + timedelta(seconds=50))
    assert not lease_take("sweep", ttl=60, holder="process-b", now=now + timedelta(seconds=100))

    # a stops renewing (its process died): once the lease has expired, b takes it, and a cannot come back
    later = now + timedelta(seconds=111)
    assert lease_holder("sweep", now=later) is None
    assert lease_take("sweep", ttl=60, holder="process-b", now=later)
    assert not lease_take("sweep", ttl=60, holder="process-a", now=later)
    assert lease_holder("sweep", now=later) == "process-b"
    assert Lease.objects.get(name="sweep").taken_at == later


def test_a_released_lease_can_be_taken_at_once_and_leases_are_independent_by_name():
    assert lease_take("collector", ttl=600, holder="process-a")
    assert lease_take("runs-sweep", ttl=600, holder="process-b")
    assert not lease_release("collector", holder="process-b")  # only the holder can give it up
    assert not lease_take("collector", ttl=600, holder="process-b")
    assert lease_release("collector", holder="process-a")
    assert lease_take("collector", ttl=600, holder="process-b")
    assert lease_holder("runs-sweep") == "process-b"


def test_a_periodic_job_with_a_lease_runs_only_once_another_holders_lease_has_expired():
    expires = timezone.now() + timedelta(seconds=0.5)
    Lease.objects.create(name="test-leased-job", holder="another-process", expires_at=expires, taken_at=timezone.now())
    ran_at: list[object] = []
    holders: list[str | None] = []
    done = threading.Event()

    def job() -> None:
        ran_at.append(timezone.now())
        holders.append(lease_holder("test-leased-job"))
        done.set()

    periodic = start_periodic(name="test-leased-job", interval=0.05, job=job, first_delay=0, lease=True)
    try:
        assert done.wait(10)
    finally:
        assert periodic.stop()
    assert ran_at[0] >= expires  # never while the other process held it
    assert holders[0] == process_id()
    assert lease_holder("test-leased-job") is None  # stopping gave it up for the next process


def test_every_scheduler_runs_under_a_lease(settings):
    from ecsportal.approvals.scheduler import start_housekeeping
    from ecsportal.runs.scheduler import start_run_sweep
    from ecsportal.stopped.scheduler import start_periodic_collector

    settings.ECSPORTAL_STOPPED_COLLECT_INTERVAL = 3600
    settings.ECSPORTAL_APPROVAL_SWEEP_SECONDS = 3600
    settings.ECSPORTAL_RUN_SWEEP_SECONDS = 3600
    jobs = [start_periodic_collector(), start_housekeeping(), start_run_sweep()]
    try:
        assert [job.lease for job in jobs] == [True, True, True]
        assert [job.lease_seconds for job in jobs] == [7200, 7200, 7200]
    finally:
        for job in jobs:
            assert job.stop()


def _race(count: int, work) -> list[object]:
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as exc:  # inspected by the test
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a racer hung"
    return results


def test_on_postgresql_twenty_processes_racing_for_a_new_and_for_an_expired_lease_give_one_holder_each_time():
    if connection.vendor != "postgresql":
        if os.environ.get("CI") == "true":
            pytest.fail("The lease race needs PostgreSQL under CI=true (set DATABASE_URL).")
        pytest.skip("The lease race needs PostgreSQL's concurrent writers (set DATABASE_URL=postgres://…).")
    fresh = _race(20, lambda i: lease_take("race", ttl=60, holder=f"racer-{i}"))
    assert fresh.count(True) == 1 and fresh.count(False) == 19, fresh
    winner = f"racer-{fresh.index(True)}"
    assert lease_holder("race") == winner

    later = timezone.now() + timedelta(seconds=120)  # the winner stopped renewing
    expired = _race(20, lambda i: lease_take("race", ttl=60, holder=f"next-{i}", now=later))
    assert expired.count(True) == 1 and expired.count(False) == 19, expired
    assert lease_holder("race", now=later) == f"next-{expired.index(True)}"
