"""Fixtures of the fault tests: servers of their own, and the portal's processes on them.

`servers` starts a PostgreSQL and a Redis for this package only (`servers.py`; never the
machine's). `portal` is a worker-mode deployment on them (`tests/deployment.py`): local AWS,
daphne A and B, one `runsworker`; a test may stop, kill, restart or add processes, and the
fixture puts back a worker named "worker" for the next test. The portal's timings are short so
that each test takes seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from tests.deployment import Deployment
from tests.faults.servers import LocalPostgres, LocalRedis, missing_binaries

HEARTBEAT_SECONDS = 0.5
STALE_SECONDS = 5
SWEEP_SECONDS = 1
DRAIN_SECONDS = 8

PORTAL_SETTINGS = {
    "ECSPORTAL_RUN_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
    "ECSPORTAL_RUN_STALE_SECONDS": str(STALE_SECONDS),
    "ECSPORTAL_RUN_SWEEP_SECONDS": str(SWEEP_SECONDS),
    "ECSPORTAL_RUN_TASK_CHECK_SECONDS": "30",
    "ECSPORTAL_DRAIN_SECONDS": str(DRAIN_SECONDS),
}


@pytest.fixture(scope="package")
def servers() -> Iterator[SimpleNamespace]:
    missing = missing_binaries()
    if missing:
        pytest.skip(f"the fault tests start their own PostgreSQL and Redis; missing here: {', '.join(missing)}")
    postgres, redis = LocalPostgres(), LocalRedis()
    try:
        postgres.start()
        redis.start()
        yield SimpleNamespace(postgres=postgres, redis=redis)
    finally:
        try:
            redis.close()
        finally:
            postgres.close()  # even when stopping Redis failed: never leave a server behind


@pytest.fixture(scope="module")
def portal(
    servers: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Deployment]:
    """A test module may adjust the settings with its own `PORTAL_SETTINGS` dict."""
    deployment = Deployment.start(
        workdir=tmp_path_factory.mktemp("faults"),
        database_url=servers.postgres.url,
        redis_url=servers.redis.url,
        channel_prefix=f"faults{os.getpid()}{request.module.__name__.rsplit('.', 1)[-1]}",
        settings={**PORTAL_SETTINGS, **getattr(request.module, "PORTAL_SETTINGS", {})},
        label="faults",
    )
    with deployment.serving(worker="worker"):
        yield deployment


@pytest.fixture
def deployment(portal: Deployment, servers: SimpleNamespace) -> Iterator[Deployment]:
    """The module's portal, with Redis and PostgreSQL up and one worker named "worker" again after the test."""
    yield portal
    if servers.redis.proc is None:
        servers.redis.start()
    for name in [n for n in portal.procs if n.startswith("worker") and n != "worker"]:
        portal.terminate(name, timeout=30)
        del portal.procs[name]
    if not portal.alive("worker"):
        portal.start_worker("worker")


@pytest.fixture(params=["worker", "embedded"])
def runs_on(request: pytest.FixtureRequest, deployment: Deployment) -> Iterator[str]:
    """Where a test's runs execute: the worker (started through daphne A), or embedded in a web
    process of their own (`ECSPORTAL_RUNNER_MODE=inprocess`), whose runs it owns; the name of the
    process to start them through. Viewers watch from daphne B either way."""
    if request.param == "worker":
        yield "daphne-a"
        return
    deployment.start_daphne("daphne-embedded", ECSPORTAL_RUNNER_MODE="inprocess")
    try:
        deployment.wait_ready()
        yield "daphne-embedded"
    finally:
        deployment.stop_process("daphne-embedded")
