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
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
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
    if mode() == "worker":
        try:
            async_to_sync(get_channel_layer().send)(RUNS_CHANNEL, {"type": "run.execute", "run_pk": run_pk})
        except Exception as exc:  # a full queue (no worker consuming) or Redis unreachable: say so, never a 500
            logger.warning("run %s: could not hand it to the runs workers: %s", run_pk, exc)
            from ecsportal.runs.models import RunStatus
            from ecsportal.runs.services import run_end

            run_end(
                run_pk=run_pk,
                status=RunStatus.ERROR,
                end_reason=f"Not run: the runs queue did not take it ({type(exc).__name__}: {exc}). "
                f"Are the `runworker {RUNS_CHANNEL}` processes up and Redis reachable?",
            )
        return
    loop = server_loop()
    if loop is None:
        loop = _private_loop()
    if _in_loop_thread(loop):
        start_local(run_pk)
    else:
        loop.call_soon_threadsafe(start_local, run_pk, context=contextvars.Context())


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
        future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop)
        future.add_done_callback(_log_failure)
        return
    async_to_sync(layer.group_send)(group, message)


def _log_failure(future: Any) -> None:
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
    """`manage.py runworker ecsportal-runs`: each message starts one run, concurrently."""

    async def run_execute(self, message: dict[str, Any]) -> None:
        start_local(int(message["run_pk"]))

    async def run_cancel(self, message: dict[str, Any]) -> None:
        event = _cancel_events.get(int(message["run_pk"]))
        if event is not None:
            event.set()
