"""The shared periodic-job thread: runs its job repeatedly, survives a failing pass, stops, off at 0."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ecsportal.periodic import PeriodicJob, start_periodic


@pytest.fixture
def started() -> Iterator[list[PeriodicJob]]:
    """Every job a test starts is stopped after it, so no thread outlives its test."""
    jobs: list[PeriodicJob] = []
    yield jobs
    for job in jobs:
        assert job.stop()


@pytest.mark.django_db(transaction=True)
def test_a_job_runs_again_after_a_failing_pass(started):
    calls: list[int] = []
    done = threading.Event()

    def job() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first pass fails")
        done.set()

    periodic = start_periodic(name="test-periodic-job", interval=0.01, job=job, first_delay=0)
    started.append(periodic)
    assert periodic is not None and periodic.thread.daemon
    assert done.wait(5)
    assert start_periodic(name="test-periodic-job", interval=0.01, job=job, first_delay=0) is periodic


@pytest.mark.django_db(transaction=True)
def test_a_stopped_job_runs_no_more_and_can_be_started_again(started):
    ran = threading.Event()
    periodic = start_periodic(name="test-periodic-stop", interval=0.01, job=ran.set, first_delay=0)
    assert ran.wait(5)
    assert periodic.stop() and not periodic.thread.is_alive() and not periodic.is_running
    again = start_periodic(name="test-periodic-stop", interval=0.01, job=lambda: None, first_delay=0)
    started.append(again)
    assert again is not periodic and again.is_running


def test_a_job_stopped_before_its_first_pass_never_runs():
    ran = threading.Event()
    periodic = start_periodic(name="test-periodic-early", interval=60, job=ran.set, first_delay=60)
    assert periodic.stop(timeout=5)
    assert not ran.is_set()


def test_an_interval_of_zero_starts_nothing():
    assert start_periodic(name="test-periodic-off", interval=0, job=lambda: None, first_delay=0) is None
