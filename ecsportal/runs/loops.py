"""The event-loop plumbing of the runs package: a leaf module (it imports nothing of the project).

Which loop runs execute on, how sync code hands work to it, the per-run cancel events, and
whether this process is stopping. The dispatcher, the runner and the lifecycle all use it;
it uses none of them, so no import circle runs through it.

In one process (``inprocess``) the runner must live on the ASGI server's own loop: the
in-memory channel layer is not thread-safe across loops. Daphne has no lifespan event, so
`LoopCapture` (the outermost ASGI app in asgi.py) records the running loop on every
connection; sync code (views, approval executors, all in threads) hands coroutines over
with `call_soon_threadsafe`. A process with no ASGI server (a management command, a shell)
gets a private loop in a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)

_loop: asyncio.AbstractEventLoop | None = None
_private: asyncio.AbstractEventLoop | None = None
_private_lock = threading.Lock()
_cancel_events: dict[int, asyncio.Event] = {}
_stopping: str | None = None


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


def private_loop() -> asyncio.AbstractEventLoop:
    """A loop of this process's own, in a daemon thread, for processes without an ASGI server."""
    global _private
    with _private_lock:
        if _private is None or _private.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="ecsportal-runner", daemon=True).start()
            _private = loop
        return _private


def runs_loop() -> asyncio.AbstractEventLoop:
    """The loop this process's runs execute on."""
    return server_loop() or private_loop()


def in_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def inprocess() -> bool:
    return getattr(settings, "ECSPORTAL_RUNNER_MODE", "inprocess") != "worker"


def call_on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    """Call `fn(*args)` on `loop`: now if this is its thread, else soon, in a fresh context (the
    caller's, a sync view's thread, would make asgiref refuse the callee's database calls)."""
    if in_loop_thread(loop):
        fn(*args)
    else:
        loop.call_soon_threadsafe(fn, *args, context=contextvars.Context())


# -- cancel events: a cancel wakes this process's runner at once ---------------------------------


def cancel_event(run_pk: int) -> asyncio.Event:
    """The event the runner of `run_pk` waits on for a cancel (this process only)."""
    return _cancel_events.setdefault(run_pk, asyncio.Event())


def drop_cancel_event(run_pk: int) -> None:
    _cancel_events.pop(run_pk, None)


def notify_cancel(run_pk: int) -> None:
    """Wake this process's runner of `run_pk` now; runners elsewhere see it on their next heartbeat."""
    event = _cancel_events.get(run_pk)
    if event is None:
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # a sync caller (a view's thread): the runners' loop sets it
        loop = server_loop() or _private
        if loop is not None:
            loop.call_soon_threadsafe(event.set)
        return
    event.set()  # on a loop already (a runs worker's consumer): the runners' loop


# -- publishing -----------------------------------------------------------------------------------

_publishing: set[Any] = set()  # publishes handed to the server loop from other threads, not yet done

# A publish that fails (Redis restarting) is tried again for about this long, then given up:
# what it carried is in the database already, and viewers that reconnect or ask read it there.
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


def group_send_from_sync(group: str, message: dict[str, Any]) -> None:
    """Publish from sync code: on the server loop when there is one (the in-memory layer
    lives there), else through async_to_sync."""
    layer = get_channel_layer()
    if layer is None:
        return
    loop = server_loop()
    if loop is not None and inprocess():
        if in_loop_thread(loop):
            loop.create_task(layer.group_send(group, message), context=contextvars.Context())
            return
        # Not waited for: the caller may be the one thread Django's database calls share,
        # which the loop's own tasks are queued behind. Order on the loop is kept (FIFO).
        # A stopping process waits for these before its loop ends (`published`).
        future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop)
        _publishing.add(future)
        future.add_done_callback(_log_failure)
        return
    async_to_sync(publish)(group, message)


async def published(timeout: float = 10) -> None:
    """Wait for the publishes handed to this loop from other threads (the runs' last statuses)."""
    waiting = [asyncio.wrap_future(future) for future in list(_publishing) if not future.done()]
    if waiting:
        await asyncio.wait(waiting, timeout=timeout)


def _log_failure(future: Any) -> None:
    _publishing.discard(future)
    if not future.cancelled() and future.exception() is not None:
        logger.warning("publishing a run's status failed: %s", future.exception())


# -- stopping -------------------------------------------------------------------------------------


def stopping_reason() -> str | None:
    """Why this process is stopping (a sentence for a run's end reason), or None while it is not.

    The runner's CancelledError path ends a run with it; the process's shutdown sets it."""
    return _stopping


def set_stopping(reason: str | None) -> None:
    global _stopping
    _stopping = reason
