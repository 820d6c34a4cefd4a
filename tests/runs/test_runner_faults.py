"""The runner against a database that fails for a moment: the end it saw is the end recorded."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from ecsportal.runs import runner, services
from ecsportal.runs.models import RunStatus
from tests.runs.lab import *  # noqa: F403
from tests.runs.lab import wait_ended


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_an_end_that_meets_a_database_restart_is_written_again_with_its_true_cause(cast, run_as, monkeypatch):
    monkeypatch.setattr(runner, "END_RETRIES", (0.05, 0.05, 0.05))
    failures = []

    def run_end_during_a_restart(**fields):  # noqa: ANN003, ANN202
        if len(failures) < 2:  # the first two writes meet the restart
            failures.append(fields["status"])
            raise OperationalError("server closed the connection unexpectedly")
        return services.run_end(**fields)

    monkeypatch.setattr(runner, "run_end", run_end_during_a_restart)

    run = await run_as(cast.operator, "echo done; exit 3")

    run = await wait_ended(run.pk)
    assert failures == [RunStatus.FAILED, RunStatus.FAILED]
    assert (run.status, run.exit_code, run.end_reason) == (RunStatus.FAILED, 3, "Exited with 3.")
