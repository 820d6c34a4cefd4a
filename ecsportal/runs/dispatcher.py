"""Where `execute_run` runs: on the web server's own event loop, or in a runs worker process.

`ECSPORTAL_RUNNER_MODE`:

- ``inprocess`` (default): the coroutine is scheduled on the ASGI server's event loop, the
  loop the WebSocket consumers use (`loops.py` says how that loop is found and why it must
  be that one); sync code (views, approval executors, all in threads) hands it over with
  `call_soon_threadsafe`.
- ``worker``: a message to the channel ``ecsportal-runs``; `RunWorkerConsumer` (routed under
  "channel" in asgi.py) runs it in `manage.py runsworker` (or channels' `runworker
  ecsportal-runs`, without reconnects or drain). Needs Redis.

Tasks are kept in a module-level dict until they finish: asyncio keeps only weak references.

**Stopping.** A process told to stop (SIGTERM to `manage.py runsworker`, or daphne's shutdown)
calls `drain()`: from then on `stopping_reason()` is a sentence, the process takes no new run
(in-process dispatch ends the run at once saying so; a worker hands a run message it already
took back to the queue for another worker), and the runs it holds go on until
ECSPORTAL_DRAIN_SECONDS. Past that their tasks are cancelled and the runner ends each one with
`stopping_reason()`, after storing the output it had received.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
from typing import Any

from asgiref.sync import async_to_sync
from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async
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
    publish,
    server_loop,
    stopping_reason,
)
from ecsportal.runs.models import RunStatus
from ecsportal.runs.runner import RUNS_CHANNEL, execute_run

logger = logging.getLogger(__name__)

_tasks: dict[int, asyncio.Task[None]] = {}


def mode() -> str:
    return getattr(settings, "ECSPORTAL_RUNNER_MODE", "inprocess")


def dispatch(run_pk: int) -> None:
    """Start a queued run (called after the commit that queued it)."""
    if mode() == "inprocess" and stopping_reason() is not None:  # nobody else would ever take it
        _refuse(
            run_pk, "Not run: this server was stopping (a deploy or a restart) when the run was queued. Start it again."
        )
        return
    if mode() == "worker":
        try:
            async_to_sync(get_channel_layer().send)(RUNS_CHANNEL, {"type": "run.execute", "run_pk": run_pk})
        except Exception as exc:  # a full queue (no worker consuming) or Redis unreachable: say so, never a 500
            logger.warning("run %s: could not hand it to the runs workers: %s", run_pk, exc)
            _refuse(
                run_pk,
                f"Not run: the runs queue did not take it ({type(exc).__name__}: {exc}). "
                f"Are the runs workers (`manage.py runsworker`, or `runworker {RUNS_CHANNEL}`) up and Redis reachable?",
            )
        return
    loops.call_on_loop(loops.runs_loop(), start_local, run_pk)


def _refuse(run_pk: int, reason: str) -> None:
    run_end(run_pk=run_pk, status=RunStatus.ERROR, end_reason=reason)


def held_runs() -> list[int]:
    """The runs this process is running now."""
    return [pk for pk, task in _tasks.items() if not task.done()]


async def drain(*, who: str, deadline: float | None = None) -> list[int]:
    """Stop taking runs; let the runs of this process finish until `deadline` seconds (default
    ECSPORTAL_DRAIN_SECONDS), then cancel the rest, which their runner ends with
    `stopping_reason()`. Returns the runs that had to be ended."""
    seconds = float(settings.ECSPORTAL_DRAIN_SECONDS if deadline is None else deadline)
    loops.set_stopping(
        f"Ended: the {who} running this command was stopped (a deploy, a restart or a scale-in) "
        f"and the command did not finish within the {seconds:g} s it was given to drain."
    )
    tasks = {pk: task for pk, task in _tasks.items() if not task.done()}
    if not tasks:
        await loops.published()
        return []
    logger.warning("stopping: draining %d run(s) for up to %g s", len(tasks), seconds)
    _, pending = await asyncio.wait(tasks.values(), timeout=seconds)
    cut = [pk for pk, task in tasks.items() if task in pending]
    for task in pending:
        task.cancel()
    if pending:  # each runner stores what it has and records the end: a few database calls
        logger.warning("stopping: ending %d run(s) that did not finish: %s", len(cut), cut)
        await asyncio.wait(pending, timeout=30)
    await loops.published()
    return cut


def reset_stopping() -> None:
    """Serve again (tests; a process never comes back from stopping)."""
    loops.set_stopping(None)


def drain_daphne_on_shutdown() -> None:
    """Under daphne, hold the server's shutdown (SIGTERM, SIGINT) until this process's in-process
    runs have drained: a Twisted "before shutdown" trigger that returns a Deferred is waited for,
    with the event loop still running. Anywhere else (runsworker, tests) nothing happens."""
    if "daphne.server" not in sys.modules:
        return
    from twisted.internet import reactor

    reactor.addSystemEventTrigger("before", "shutdown", _drain_deferred)


def _drain_deferred():  # a Twisted Deferred, or None when there is nothing to wait for
    from twisted.internet.defer import Deferred

    loop = server_loop()
    if loop is None:
        loops.set_stopping("Ended: the server running this command was stopped.")
        return None
    return Deferred.fromFuture(asyncio.ensure_future(drain(who="web server"), loop=loop))


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
    """`manage.py runsworker` (or channels' `runworker ecsportal-runs`): each message starts one
    run, concurrently. A stopping worker hands the message back to the queue for another."""

    async def run_execute(self, message: dict[str, Any]) -> None:
        run_pk = int(message["run_pk"])
        if stopping_reason() is None:
            start_local(run_pk)
            return
        try:
            await self.channel_layer.send(RUNS_CHANNEL, {"type": "run.execute", "run_pk": run_pk})
            logger.info("run %s: handed back to the queue (this worker is stopping)", run_pk)
        except Exception as exc:
            logger.warning("run %s: a stopping worker could not hand it back: %s", run_pk, exc)
            await database_sync_to_async(_refuse)(
                run_pk,
                f"Not run: the runs worker that took it was stopping and could not hand it back to the "
                f"queue ({type(exc).__name__}: {exc}). Start it again.",
            )

    async def run_cancel(self, message: dict[str, Any]) -> None:
        loops.notify_cancel(int(message["run_pk"]))
