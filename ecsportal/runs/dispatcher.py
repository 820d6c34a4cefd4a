"""Where `execute_run` runs: on the web server's own event loop, or in a `runworker` process.

`ECSPORTAL_RUNNER_MODE`:

- ``inprocess`` (default): the coroutine is scheduled on the ASGI server's event loop, the
  loop the WebSocket consumers use (`loops.py` says how that loop is found and why it must
  be that one); sync code (views, approval executors, all in threads) hands it over with
  `call_soon_threadsafe`.
- ``worker``: a message to the channel ``ecsportal-runs``; `RunWorkerConsumer` (routed under
  "channel" in asgi.py) runs it in `manage.py runworker ecsportal-runs`. Needs Redis.

Tasks are kept in a module-level dict until they finish: asyncio keeps only weak references.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.consumer import AsyncConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from ecsportal.runs import loops
from ecsportal.runs.lifecycle import run_end
from ecsportal.runs.loops import (  # noqa: F401 (the dispatcher's public names, kept for asgi.py and the tests)
    LoopCapture,
    bind_loop,
    cancel_event,
    drop_cancel_event,
    group_send_from_sync,
    notify_cancel,
    server_loop,
    stopping_reason,
)
from ecsportal.runs.models import RunStatus
from ecsportal.runs.runner import execute_run

logger = logging.getLogger(__name__)

RUNS_CHANNEL = "ecsportal-runs"

_tasks: dict[int, asyncio.Task[None]] = {}


def mode() -> str:
    return getattr(settings, "ECSPORTAL_RUNNER_MODE", "inprocess")


def dispatch(run_pk: int) -> None:
    """Start a queued run (called after the commit that queued it)."""
    if mode() == "worker":
        try:
            async_to_sync(get_channel_layer().send)(RUNS_CHANNEL, {"type": "run.execute", "run_pk": run_pk})
        except Exception as exc:  # a full queue (no worker consuming) or Redis unreachable: say so, never a 500
            logger.warning("run %s: could not hand it to the runs workers: %s", run_pk, exc)
            run_end(
                run_pk=run_pk,
                status=RunStatus.ERROR,
                end_reason=f"Not run: the runs queue did not take it ({type(exc).__name__}: {exc}). "
                f"Are the `runworker {RUNS_CHANNEL}` processes up and Redis reachable?",
            )
        return
    loops.call_on_loop(loops.runs_loop(), start_local, run_pk)


def start_local(run_pk: int) -> asyncio.Task[None] | None:
    """On the running loop: start the run's coroutine once, keeping a strong reference."""
    existing = _tasks.get(run_pk)
    if existing is not None and not existing.done():
        return existing
    # A fresh context: the caller's (a sync view's thread) would make asgiref believe the
    # runner's database calls are nested inside that thread's call, and refuse them.
    task = asyncio.get_running_loop().create_task(
        execute_run(run_pk), name=f"run-{run_pk}", context=contextvars.Context()
    )
    _tasks[run_pk] = task
    task.add_done_callback(lambda t, pk=run_pk: _forget(pk, t))
    return task


def _forget(run_pk: int, task: asyncio.Task[None]) -> None:
    if _tasks.get(run_pk) is task:
        del _tasks[run_pk]
    if not task.cancelled() and task.exception() is not None:
        logger.error("run %s: runner crashed", run_pk, exc_info=task.exception())


def local_task(run_pk: int) -> asyncio.Task[None] | None:
    return _tasks.get(run_pk)


class RunWorkerConsumer(AsyncConsumer):
    """`manage.py runworker ecsportal-runs`: each message starts one run, concurrently."""

    async def run_execute(self, message: dict[str, Any]) -> None:
        start_local(int(message["run_pk"]))

    async def run_cancel(self, message: dict[str, Any]) -> None:
        loops.notify_cancel(int(message["run_pk"]))
