"""A lab for batches: a cluster of its own per test (fresh tasks, nothing cached), in a region
no other lab uses, on an account where the cast holds its roles."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from channels.db import database_sync_to_async

from ecsportal.demo import localaws
from tests.lab import lab_account, lab_cluster
from tests.lab import lab_task as start_task
from tests.runs.lab import fast_runs  # noqa: F401

BATCH_REGION = "ca-central-1"
_numbers = itertools.count(1)


@pytest.fixture
def batch_lab(cast, local_aws, data_channel, fast_runs):  # noqa: F811
    """A fresh cluster `batch-lab-N` with service "web"; `lab.task(...)` starts a task in it."""
    from ecsportal.runs import dispatcher

    dispatcher.reset_stopping()
    cluster = f"batch-lab-{next(_numbers)}-{id(cast) % 100000}"
    ecs = lab_cluster(
        local_aws.endpoint_url, region=BATCH_REGION, cluster=cluster, families=("batch-web", "batch-other")
    )
    account = lab_account(
        cast, name="Batch Lab", region=BATCH_REGION, approvals_for_commands=0, approvals_for_runbooks=0
    )

    def task(
        *,
        exec_enabled: bool = True,
        agent: str = "RUNNING",
        family: str = "batch-web",
        service: str = "web",
        sidecar: bool = False,
    ) -> str:
        specs = [localaws.ContainerSpec("app", "lab/app:1", agent)]
        if sidecar:
            specs.append(localaws.ContainerSpec("sidecar", "lab/side:1", agent))
        return start_task(
            ecs,
            region=BATCH_REGION,
            cluster=cluster,
            family=family,
            service=service,
            containers=specs,
            exec_enabled=exec_enabled,
        )

    return SimpleNamespace(cluster=cluster, account=account, task=task, ecs=ecs, cast=cast)


def spec_for(lab, **fields):
    from ecsportal.batches.services import BatchSpec

    return BatchSpec(accounts=(lab.account.pk,), region=BATCH_REGION, cluster=lab.cluster, **fields)


async def wait_batch_ended(batch_pk: int, timeout: float = 90.0, *, on_poll: Callable[[], object] | None = None):
    """The batch once it has ended (polls the database; fails after `timeout`)."""
    from ecsportal.batches.models import Batch

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if on_poll is not None:
            await database_sync_to_async(on_poll)()
        batch = await database_sync_to_async(Batch.objects.get)(pk=batch_pk)
        if batch.is_finished:
            return batch
        if loop.time() > deadline:
            raise AssertionError(f"batch {batch_pk} still {batch.status} after {timeout} s")
        await asyncio.sleep(0.05)
