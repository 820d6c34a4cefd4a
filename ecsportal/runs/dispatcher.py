"""Where `execute_run` runs: on the web server's own event loop, or in a `runworker` process.

`ECSPORTAL_RUNNER_MODE`:

- ``inprocess`` (default): the coroutine is scheduled on the ASGI server's event loop, the
  loop the WebSocket consumers use. Daphne has no lifespan event, so `LoopCapture` (the
  outermost ASGI app in asgi.py) records the running loop on every connection; sync code
  (views, approval executors, all in threads) hands the coroutine over with
  `run_coroutine_threadsafe`. The in-memory channel layer is not thread-safe across loops,
  which is why the runner must live on that loop and not on a private one.
- ``worker``: a message to the channel ``ecsportal-runs``; `RunWorkerConsumer` (routed under
  "channel" in asgi.py) runs it in `manage.py runworker ecsportal-runs`. Needs Redis.

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
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.consumer import AsyncConsumer
from channels.layers import get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)

RUNS_CHANNEL = "ecsportal-runs"

_loop: asyncio.AbstractEventLoop | None = None
_tasks: dict[int, asyncio.Task[None]] = {}
_cancel_events: dict[int, asyncio.Event] = {}
_stopping: str | None = None  # why this process is stopping (None while it serves)
_publishing: set[Any] = set()  # publishes handed to the server loop from other threads, not yet done


class LoopCapture:
    """ASGI wrapper that remembers the server's event loop (daphne sends no lifespan)."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        bind_loop(asyncio.get_running_loop())
        await self.app(scope, receive, send)


def bind_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Use `loop` for in-process runs (LoopCapture calls it; tests may call it directly)."""
    global _loop
    _loop = loop


def server_loop() -> asyncio.AbstractEventLoop | None:
    loop = _loop
    if loop is None or loop.is_closed() or not loop.is_running():
        return None
    return loop


def mode() -> str:
    return getattr(settings, "ECSPORTAL_RUNNER_MODE", "inprocess")


def dispatch(run_pk: int) -> None:
    """Start a queued run (called after the commit that queued it)."""
    if mode() == "inprocess" and _stopping is not None:  # nobody else would ever take it
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
    loop = server_loop()
    if loop is None:
        loop = _private_loop()
    if _in_loop_thread(loop):
        start_local(run_pk)
    else:
        loop.call_soon_threadsafe(start_local, run_pk, context=contextvars.Context())


def _refuse(run_pk: int, reason: str) -> None:
    from ecsportal.runs.models import RunStatus
    from ecsportal.runs.services import run_end

    run_end(run_pk=run_pk, status=RunStatus.ERROR, end_reason=reason)


def stopping_reason() -> str | None:
    """None while this process serves; once it is stopping, why (the end reason of the runs it
    could not drain in time)."""
    return _stopping


def held_runs() -> list[int]:
    """The runs this process is running now."""
    return [pk for pk, task in _tasks.items() if not task.done()]


async def drain(*, who: str, deadline: float | None = None) -> list[int]:
    """Stop taking runs; let the runs of this process finish until `deadline` seconds (default
    ECSPORTAL_DRAIN_SECONDS), then cancel the rest, which their runner ends with
    `stopping_reason()`. Returns the runs that had to be ended."""
    global _stopping
    seconds = float(settings.ECSPORTAL_DRAIN_SECONDS if deadline is None else deadline)
    _stopping = (
        f"Ended: the {who} running this command was stopped (a deploy, a restart or a scale-in) "
        f"and the command did not finish within the {seconds:g} s it was given to drain."
    )
    tasks = {pk: task for pk, task in _tasks.items() if not task.done()}
    if not tasks:
        return []
    logger.warning("stopping: draining %d run(s) for up to %g s", len(tasks), seconds)
    _, pending = await asyncio.wait(tasks.values(), timeout=seconds)
    cut = [pk for pk, task in tasks.items() if task in pending]
    for task in pending:
        task.cancel()
    if pending:  # each runner stores what it has and records the end: a few database calls
        logger.warning("stopping: ending %d run(s) that did not finish: %s", len(cut), cut)
        await asyncio.wait(pending, timeout=30)
    await _published()
    return cut


def reset_stopping() -> None:
    """Serve again (tests; a process never comes back from stopping)."""
    global _stopping
    _stopping = None


def drain_daphne_on_shutdown() -> None:
    """Under daphne, hold the server's shutdown (SIGTERM, SIGINT) until this process's in-process
    runs have drained: a Twisted "before shutdown" trigger that returns a Deferred is waited for,
    with the event loop still running. Anywhere else (runsworker, tests) nothing happens."""
    if "daphne.server" not in sys.modules:
        return
    from twisted.internet import reactor

    reactor.addSystemEventTrigger("before", "shutdown", _drain_deferred)


def _drain_deferred():  # noqa: ANN202 (a Twisted Deferred, or None when there is nothing to wait for)
    from twisted.internet.defer import Deferred

    loop = server_loop()
    if loop is None:
        global _stopping
        _stopping = "Ended: the server running this command was stopped."
        return None
    return Deferred.fromFuture(asyncio.ensure_future(drain(who="web server"), loop=loop))


def start_local(run_pk: int) -> asyncio.Task[None] | None:
    """On the running loop: start the run's coroutine once, keeping a strong reference."""
    from ecsportal.runs.runner import execute_run

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


def cancel_event(run_pk: int) -> asyncio.Event:
    """The event the runner of `run_pk` waits on for a cancel (this process only)."""
    return _cancel_events.setdefault(run_pk, asyncio.Event())


def drop_cancel_event(run_pk: int) -> None:
    _cancel_events.pop(run_pk, None)


def notify_cancel(run_pk: int) -> None:
    """Wake this process's runner of `run_pk` now; runners elsewhere see it on their next heartbeat."""
    event = _cancel_events.get(run_pk)
    loop = server_loop() or _private
    if event is None or loop is None:
        return
    if _in_loop_thread(loop):
        event.set()
    else:
        loop.call_soon_threadsafe(event.set)


def group_send_from_sync(group: str, message: dict[str, Any]) -> None:
    """Publish from sync code: on the server loop when there is one (the in-memory layer
    lives there), else through async_to_sync."""
    layer = get_channel_layer()
    if layer is None:
        return
    loop = server_loop()
    if loop is not None and mode() == "inprocess":
        if _in_loop_thread(loop):
            loop.create_task(layer.group_send(group, message), context=contextvars.Context())
            return
        # Not waited for: the caller may be the one thread Django's database calls share,
        # which the loop's own tasks are queued behind. Order on the loop is kept (FIFO).
        # A stopping process waits for these before its loop ends (`drain`).
        future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop)
        _publishing.add(future)
        future.add_done_callback(_log_failure)
        return
    async_to_sync(publish)(group, message)


# A publish that fails (Redis restarting) is tried again for about this long, then given up:
# what it carried is in the database already, and viewers that reconnect read it from there.
PUBLISH_RETRIES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


async def publish(group: str, message: dict[str, Any]) -> bool:
    """`group_send` that outlasts a short Redis outage and never raises: False when given up."""
    layer = get_channel_layer()
    if layer is None:
        return False
    for wait in (*PUBLISH_RETRIES, None):
        try:
            await layer.group_send(group, message)
            return True
        except Exception as exc:
            if wait is None:
                logger.warning("publishing to %s failed, given up (the database has it): %s", group, exc)
                return False
            logger.info("publishing to %s failed (%s); again in %g s", group, exc, wait)
            await asyncio.sleep(wait)
    return False


async def _published(timeout: float = 10) -> None:
    """Wait for the publishes handed to this loop from other threads (the runs' last statuses)."""
    waiting = [asyncio.wrap_future(future) for future in list(_publishing) if not future.done()]
    if waiting:
        await asyncio.wait(waiting, timeout=timeout)


def _log_failure(future: Any) -> None:
    _publishing.discard(future)
    if not future.cancelled() and future.exception() is not None:
        logger.warning("publishing a run's status failed: %s", future.exception())


def _in_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


# A process with no ASGI server (a management command, a shell) runs runs on a loop of its own.
_private: asyncio.AbstractEventLoop | None = None
_private_lock = threading.Lock()


def _private_loop() -> asyncio.AbstractEventLoop:
    global _private
    with _private_lock:
        if _private is None or _private.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="ecsportal-runner", daemon=True).start()
            _private = loop
        return _private


class RunWorkerConsumer(AsyncConsumer):
    """`manage.py runsworker` (or channels' `runworker ecsportal-runs`): each message starts one
    run, concurrently. A stopping worker hands the message back to the queue for another."""

    async def run_execute(self, message: dict[str, Any]) -> None:
        run_pk = int(message["run_pk"])
        if _stopping is None:
            start_local(run_pk)
            return
        try:
            await self.channel_layer.send(RUNS_CHANNEL, {"type": "run.execute", "run_pk": run_pk})
            logger.info("run %s: handed back to the queue (this worker is stopping)", run_pk)
        except Exception as exc:
            logger.warning("run %s: a stopping worker could not hand it back: %s", run_pk, exc)
            from channels.db import database_sync_to_async

            await database_sync_to_async(_refuse)(
                run_pk,
                f"Not run: the runs worker that took it was stopping and could not hand it back to the "
                f"queue ({type(exc).__name__}: {exc}). Start it again.",
            )

    async def run_cancel(self, message: dict[str, Any]) -> None:
        event = _cancel_events.get(int(message["run_pk"]))
        if event is not None:
            event.set()
