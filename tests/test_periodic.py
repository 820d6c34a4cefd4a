"""The shared periodic-job thread: runs its job repeatedly, survives a failing pass, off at 0."""

from __future__ import annotations

import threading

import pytest

from ecsportal.periodic import start_periodic


@pytest.mark.django_db(transaction=True)
def test_a_job_runs_again_after_a_failing_pass():
    calls: list[int] = []
    done = threading.Event()

    def job() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first pass fails")
        done.set()

    thread = start_periodic(name="test-periodic-job", interval=0.01, job=job, first_delay=0)
    assert thread is not None and thread.daemon
    assert done.wait(5)
    assert start_periodic(name="test-periodic-job", interval=0.01, job=job, first_delay=0) is thread


def test_an_interval_of_zero_starts_nothing():
    assert start_periodic(name="test-periodic-off", interval=0, job=lambda: None, first_delay=0) is None
