"""Asyncio client for an ECS Exec data channel: a thin driver over ``ClientSession``.

Usage (the runner's shape)::

    async with SsmClient(stream_url, token, open_timeout=10, idle_timeout=600) as session:
        await session.resize(cols, rows)
        await session.send_input(b"...")          # optional
        async for chunk in session:               # terminal bytes, in order, exactly once
                                                  # (one or more agent messages joined)
            ...
    session.end   # SessionEnded(kind, message); kind is an EndKind:
                  # normal | error | channel_lost | timed_out | closed

Network failures never raise: a channel that cannot be opened, a refused token, a lost
connection, a silent agent all end the iteration and are described by ``end``. Only
programming errors (a malformed URL, a size out of range) raise.

The driver opens the WebSocket, sends the token frame, then runs three tasks: a reader
that pumps frames from the socket through the core, acks them at once and queues output for
the iterator, a writer that sends what the core has to send when the socket is backed up (it
waits for it to drain; otherwise acks, input and resizes are written at once by whoever made
them), and a ticker that runs every 100 ms for retransmission, the input grace period and the
idle timeout. The output queue is bounded, so a slow consumer stops the socket being read and
the agent is held back by TCP rather than this process buffering without limit.

The token is kept in a private attribute, sent once, and never logged by this module:
websockets' frame dumps go to the dedicated logger ``ecsportal.ssm.websockets``, which
``settings.LOGGING`` (``logs.py``) sets to WARNING with the redaction filter, so turning on
DEBUG logging elsewhere cannot print the token frame; nothing here changes its level.

``python -m ecsportal.ssm.client --url URL --token TOKEN`` copies stdin to the session and
the session's output to stdout, for trying a server by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import threading
import uuid
from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Protocol, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from ecsportal.ssm.messages import token_message
from ecsportal.ssm.session import (
    CLIENT_VERSION,
    ClientSession,
    EndKind,
    Event,
    OutputReceived,
    ProtocolWarning,
    SessionEnded,
    SessionStarted,
)
from ecsportal.ssm.streams import RETRANSMIT_INTERVAL
from ecsportal.ssm.wsio import can_send_now, frames_queue, send_binary_batch, send_binary_now

logger = logging.getLogger(__name__)
# The websockets library's frame dumps at DEBUG would include the token frame; its level is set
# in settings.LOGGING (WARNING), never here, so that a deployment's logging config is obeyed.
_WS_LOGGER = logging.getLogger("ecsportal.ssm.websockets")

COALESCE = 65536
"""Largest chunk the iterator joins from output messages that are already queued."""
CLIENT_ID = str(uuid.uuid4())
"""One ClientId per process, as the Go plugin sends."""


class Hold(Protocol):
    """What a client yields to (`SsmClient.yield_to`): runs/pacing.py's `LoopPacer`."""

    def must_wait(self) -> bool: ...

    async def released(self) -> None: ...


class SsmClient:
    """One ECS Exec session over a data-channel URL; see the module docstring."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        open_timeout: float = 10.0,
        idle_timeout: float | None = 600.0,
        start_grace: float = 1.0,
        ping_interval: float | None = 60.0,
        ping_timeout: float | None = 30.0,
        client_version: str = CLIENT_VERSION,
        max_buffered: int = 1 << 20,
    ) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise ValueError("the stream URL must be ws:// or wss://")
        self.url = url
        self._token = token
        self.open_timeout = open_timeout
        self.idle_timeout = idle_timeout
        self.start_grace = start_grace
        self._ping = (ping_interval, ping_timeout)
        self.core = ClientSession(client_version=client_version)
        self._buffer: deque[bytes] = deque()
        self._buffered = 0
        self._max_buffered = self._read_ahead = max_buffered
        self._finished = False
        self._has_data = asyncio.Event()
        self._has_space = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._opened_at = 0.0
        self._last_data = 0.0
        self._blocked = False
        self._closing = False
        self._wake = asyncio.Event()
        self._writing = False
        self._hold: Hold | None = None
        self.started = asyncio.Event()
        self.token_sent = False
        """Whether `open()` got as far as sending the token. An open that failed before it (a
        refused or timed-out connection or WebSocket handshake) showed the server nothing, so
        the caller may try the same URL and token again."""

    def __repr__(self) -> str:
        return f"<SsmClient {self.url} end={self.end!r}>"

    @property
    def end(self) -> SessionEnded | None:
        """How the session ended, or ``None`` while it runs."""
        return self.core.end

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect and send the token frame; failures end the session instead of raising."""
        loop = asyncio.get_running_loop()
        try:
            self._ws = await connect(
                self.url,
                open_timeout=self.open_timeout,
                ping_interval=self._ping[0],
                ping_timeout=self._ping[1],
                close_timeout=2,
                compression=None,
                max_size=2**20,
                logger=_WS_LOGGER,
            )
            self.token_sent = True  # from here on the server may have it (a send can fail half-way)
            message = token_message(
                self._token,
                client_id=CLIENT_ID,
                client_version=self.core.client_version,
            )
            await self._ws.send(message)
        except TimeoutError:
            self._handle(
                self.core.fail(
                    EndKind.TIMED_OUT,
                    f"could not open the data channel within {self.open_timeout:g} s",
                )
            )
            return
        except (OSError, WebSocketException) as error:
            self._handle(
                self.core.fail(
                    EndKind.ERROR,
                    f"could not open the data channel: {_describe(error)}",
                )
            )
            return
        self._opened_at = self._last_data = loop.time()
        self._tasks = [
            asyncio.create_task(self._read(), name="ssm-read"),
            asyncio.create_task(self._tick(), name="ssm-tick"),
            asyncio.create_task(self._write(), name="ssm-write"),
        ]

    async def close(self) -> None:
        """End the session (asking the agent to stop the command) and close the socket."""
        if self._closing:
            return
        self._closing = True
        if self.core.end is None and self._ws is not None:
            self.core.terminate(asyncio.get_running_loop().time())
            await self._send_pending()
        self._handle(self.core.fail(EndKind.CLOSED, "closed by the client"))
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for task in self._tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()

    async def wait(self) -> SessionEnded:
        """Discard the remaining output and return how the session ended."""
        async for _ in self:
            pass
        assert self.core.end is not None
        return self.core.end

    # -- user actions -----------------------------------------------------------------------

    async def send_input(self, data: bytes) -> None:
        """Send stdin bytes (Ctrl-C is ``b"\\x03"``); ignored once the session has ended."""
        self.core.send_input(data, asyncio.get_running_loop().time())
        await self._flush()

    async def resize(self, cols: int, rows: int) -> None:
        """Set the remote terminal size; send it before the command needs it."""
        self.core.resize(cols, rows, asyncio.get_running_loop().time())
        await self._flush()

    @property
    def buffered(self) -> int:
        """Bytes of output read from the socket and not yet taken by the iterator."""
        return self._buffered

    def read_ahead(self, limit: int | None) -> None:
        """Buffer at most `limit` bytes of output before the socket stops being read (`None`:
        the limit given at construction). A caller that slows down (a bulk run yielding to
        shells) lowers it, so the reader stops after a few messages instead of reading,
        parsing and acking a megabyte first; TCP then holds the agent back."""
        self._max_buffered = self._read_ahead if limit is None else max(1, limit)
        if self._buffered <= self._max_buffered // 2:
            self._has_space.set()

    def yield_to(self, hold: Hold | None) -> None:
        """Stop before each message while `hold.must_wait()` (until `hold.released()`): output nobody
        types into waits while a shell's echo is on its way (runs/pacing.py). The agent's
        messages wait in the socket meanwhile, unread and unacknowledged."""
        self._hold = hold

    # -- output -----------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        """The next output bytes: whatever has arrived, joined up to ``COALESCE`` bytes.

        Joining frames that are already queued costs nothing in latency and saves the
        consumer (which may store each chunk) work per frame. Chunk boundaries carry no
        meaning, but each chunk is made of whole agent messages, so UTF-8 is never split.
        """
        buffer = self._buffer
        while not buffer:
            if self._finished:
                raise StopAsyncIteration
            self._has_data.clear()
            await self._has_data.wait()
        chunk = buffer.popleft()
        if buffer and len(chunk) < COALESCE:
            parts, size = [chunk], len(chunk)
            while buffer and size < COALESCE:
                more = buffer.popleft()
                parts.append(more)
                size += len(more)
            chunk = b"".join(parts)
        self._buffered -= len(chunk)
        if self._buffered <= self._max_buffered // 2:
            self._has_space.set()
        return chunk

    # -- the two tasks ----------------------------------------------------------------------

    async def _read(self) -> None:
        ws = self._ws
        assert ws is not None
        loop = asyncio.get_running_loop()
        core = self.core
        detail = ""
        queued = frames_queue(ws)
        try:
            async for message in ws:
                hold = self._hold
                if hold is not None and hold.must_wait():
                    self._send_now()  # the acks this step owes go before it waits
                    self._blocked = True  # not idle: held
                    await hold.released()
                    self._blocked = False
                    self._last_data = loop.time()
                if isinstance(message, str):
                    self._handle([ProtocolWarning("ignored a text frame")])
                    continue
                now = loop.time()
                self._last_data = now
                events = core.receive_data(message, now)
                if not queued:  # the acks, from here, once per step: one write, not one per message
                    self._send_now()
                for event in events:
                    if type(event) is OutputReceived:
                        self._buffer.append(event.data)
                        self._buffered += len(event.data)
                    else:
                        self._handle([event])
                self._has_data.set()
                if self._buffered > self._max_buffered:
                    self._send_now()
                    await self._wait_for_consumer()
                if core.end is not None:
                    break
        except ConnectionClosed as closed:
            detail = _describe(closed)
        except asyncio.CancelledError:
            raise
        if core.end is None:
            if core.started:
                self._handle(core.connection_lost(detail))
            else:
                self._handle(
                    core.fail(
                        EndKind.ERROR,
                        "the data channel was closed before the session started"
                        f" ({detail or 'no close frame'}); the token may be invalid,"
                        " expired or already used",
                    )
                )
        await self._shutdown()

    async def _wait_for_consumer(self) -> None:
        """Stop reading the socket until the consumer catches up (TCP holds the agent)."""
        self._blocked = True
        while self._buffered > self._max_buffered and not self._finished:
            self._has_space.clear()
            await self._has_space.wait()
        self._blocked = False
        self._last_data = asyncio.get_running_loop().time()

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        core = self.core
        while core.end is None:
            await asyncio.sleep(RETRANSMIT_INTERVAL)
            now = loop.time()
            self._handle(core.tick(now))
            if not core.started and now - self._opened_at >= self.start_grace:
                core.open_input(now)
            idle = self.idle_timeout
            if idle is not None and not self._blocked and now - self._last_data > idle:
                self._handle(core.fail(EndKind.TIMED_OUT, f"no data from the agent for {idle:g} s"))
            await self._flush()
        await self._shutdown()

    async def _flush(self) -> None:
        """Send what the core has queued (input, a resize, retransmissions)."""
        self._send_now()

    def _send_now(self) -> None:
        """Write what the core has to send at once, from the calling task, when the socket is
        open and keeps up; else wake the writer task, which waits for the socket to drain.

        An ack sent by the writer task waited for that task's turn: under load a loop iteration
        of hundreds of callbacks, during which the agent's retransmission timer runs (it is
        tens of milliseconds on a fast link), and a keystroke the same. No await separates the
        check from the write, so the writer cannot interleave (it takes and writes its own
        batch in one step too); messages keep their order."""
        ws = self._ws
        if ws is None:
            return
        if self._writing or not can_send_now(ws):
            self._wake.set()
            return
        outbox = self.core.data_to_send()
        if outbox:
            send_binary_now(ws, outbox)

    async def _write(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._send_pending()

    async def _send_pending(self) -> None:
        ws = self._ws
        outbox = self.core.data_to_send()
        if ws is None or not outbox:
            return
        self._writing = True  # until this batch is out, `_send_now` leaves what follows to this task
        try:
            await send_binary_batch(ws, outbox)
        except ConnectionClosed:
            pass  # the reader task sees the close and ends the session
        finally:
            self._writing = False

    def _handle(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, OutputReceived):
                self._buffer.append(event.data)
                self._buffered += len(event.data)
                self._has_data.set()
            elif isinstance(event, SessionStarted):
                self.started.set()
                if event.customer_message:
                    logger.info("agent message: %s", event.customer_message)
            elif isinstance(event, SessionEnded):
                logger.info("session ended: %s %s", event.kind, event.message)
                self._end_queue()
            elif isinstance(event, ProtocolWarning):
                logger.debug("data channel: %s", event.message)

    def _end_queue(self) -> None:
        """The iterator ends once it has handed out everything buffered before the end."""
        self._finished = True
        self._has_data.set()
        self._has_space.set()

    async def _shutdown(self) -> None:
        """After the end: send what is queued (a last ack, a handshake refusal), stop the
        other tasks and close the socket without waiting long."""
        await self._send_pending()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()


def _describe(error: BaseException) -> str:
    """A short, token-free description of a connection failure."""
    if isinstance(error, InvalidStatus):
        return f"HTTP {error.response.status_code}"
    if isinstance(error, ConnectionClosed):
        received = error.rcvd
        if received is None:
            return "connection closed without a close frame"
        reason = f": {received.reason}" if received.reason else ""
        return f"close code {received.code}{reason}"
    return f"{type(error).__name__}: {error}"


# -- command line ---------------------------------------------------------------------------


async def _copy_stdin(session: SsmClient) -> None:
    """Copy stdin to the session. The blocking reads happen on a daemon thread, so the
    command exits as soon as the session ends even while stdin is still open (an executor
    thread would keep ``asyncio.run`` waiting for the next line)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    def pump() -> None:
        while True:
            try:
                data = os.read(0, 1024)
            except OSError:
                data = b""
            try:
                loop.call_soon_threadsafe(queue.put_nowait, data)
            except RuntimeError:  # the loop has closed: the session is over
                return
            if not data:
                return

    threading.Thread(target=pump, name="ssm-stdin", daemon=True).start()
    while session.end is None:
        data = await queue.get()
        if not data:
            return
        await session.send_input(data)


async def _main(url: str, token: str, idle_timeout: float | None) -> int:
    async with SsmClient(url, token, idle_timeout=idle_timeout) as session:
        with contextlib.suppress(OSError):
            size = os.get_terminal_size(sys.stdout.fileno())
            await session.resize(size.columns, size.lines)
        reader = asyncio.create_task(_copy_stdin(session))
        out = sys.stdout.buffer
        async for chunk in session:
            out.write(chunk)
            out.flush()
        reader.cancel()
    end = session.end
    assert end is not None
    if end.kind != EndKind.NORMAL:
        print(f"\r\nsession ended: {end.kind}: {end.message}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecsportal.ssm.client", description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="the session's streamUrl")
    parser.add_argument(
        "--token",
        default=os.environ.get("SSM_TOKEN"),
        help="tokenValue (or $SSM_TOKEN)",
    )
    parser.add_argument("--idle-timeout", type=float, default=None)
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("give --token or set SSM_TOKEN")
    raw = sys.stdin.isatty()
    if raw:
        import termios
        import tty

        saved = termios.tcgetattr(0)
        tty.setraw(0)
    try:
        return asyncio.run(_main(args.url, args.token, args.idle_timeout))
    finally:
        if raw:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


if __name__ == "__main__":
    sys.exit(main())
