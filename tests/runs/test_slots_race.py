"""Slots on PostgreSQL (slots.py): runners of several processes racing for the last slots."""

from __future__ import annotations

import pytest

from ecsportal.runs.models import Run, RunStatus


@pytest.mark.django_db(transaction=True)
def test_on_postgresql_twelve_runners_racing_for_two_slots_take_two(cast, runs_lab, settings):
    """The count and the move are one transaction under an advisory lock: runners of several
    processes asking at the same moment never take more slots than there are."""
    import os
    import threading

    from django.db import connection, connections

    from ecsportal.runs.slots import TAKEN, run_take_slot
    from tests.runs.lab import stored_run

    if connection.vendor != "postgresql":
        if os.environ.get("CI") == "true":
            pytest.fail("The slot race needs PostgreSQL under CI=true (set DATABASE_URL).")
        pytest.skip("The slot race needs PostgreSQL's concurrent writers (set DATABASE_URL=postgres://…).")
    settings.ECSPORTAL_RUNS_MAX_ACTIVE = 2
    pks = [stored_run(account=runs_lab, requested_by=cast.operator).pk for _ in range(12)]
    barrier = threading.Barrier(len(pks))
    answers: dict[int, str] = {}

    def take(pk: int) -> None:
        try:
            barrier.wait()
            answers[pk] = run_take_slot(run_pk=pk, runner_id=f"racer-{pk}")
        except Exception as exc:  # inspected below
            answers[pk] = repr(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=take, args=(pk,)) for pk in pks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert list(answers.values()).count(TAKEN) == 2, answers
    assert all(a == TAKEN or a.startswith("Waiting for a free slot: 2 runs are running") for a in answers.values())
    assert Run.objects.filter(status=RunStatus.CONNECTING).count() == 2
