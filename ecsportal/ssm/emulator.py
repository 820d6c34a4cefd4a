"""A stand-in for the SSM agent and service at the far end of an ECS Exec data channel.

WARNING: the emulator runs real commands, as the user running it, on the machine it runs on.
That is its purpose (the demo and the tests need real output, real exit codes and real
terminals), so it binds to loopback addresses only and refuses anything else, and serves
only sessions registered with a token.

What it does, as the agent does in container mode (docs/ssm-data-channel.md):

* accepts the token frame (with or without ``ClientId``/``ClientVersion``) on
  ``/v1/data-channel/<sessionId>``; an unknown session, a wrong token or a session that is
  already connected is refused with close code 1008;
* splits the command shell-style and executes it directly (not through a shell) under a
  pseudo-terminal whose size follows the client's size messages, in a per-session scratch
  directory (removed afterwards) unless ``cwd`` is given;
* streams output as ``output_stream_data`` of at most 1024 bytes without splitting UTF-8,
  acks every client message, delivers input in order, resends unacked output with the
  spec's RTO, and when the command exits waits for its output to be acked and sends
  ``channel_closed`` (with an error ``Output`` if the command could not be started);
* optionally runs the handshake, or a handshake that demands KMS encryption;
* injects faults (``Faults``) for tests.

Registry API, for the local-AWS ExecuteCommand seam (thread-safe)::

    emulator = start_in_thread()                      # daemon thread, 127.0.0.1, free port
    url = emulator.register_session(session_id=..., token=..., command=..., container=...)
    ...
    emulator.stop()

Registering from another process (the portal's runner processes, when the emulator runs in a
process of its own: ``manage.py demo --aws-only``): created with ``registration_key``, the
emulator also serves ``/v1/register``, a WebSocket on which a client sends one JSON text message
``{"key", "session_id", "token", "command", "container"}`` and receives ``{"stream_url"}``; a
wrong key is refused with 1008. ``remote_registrar(url, key)`` is that client.

``python -m ecsportal.ssm.emulator --listen 127.0.0.1:PORT --token TOKEN -- COMMAND ARGS…``
serves that one command for any session ID, so other clients can be tried against it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import fcntl
import hmac
import ipaddress
import json
import logging
import os
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ecsportal.ssm import frames as f
from ecsportal.ssm.agent import (
    AgentSession,
    GaveUp,
    HandshakeDone,
    InputData,
    Outgoing,
    Resize,
    TerminateRequested,
    utf8_chunks,
)
from ecsportal.ssm.frames import Frame, encode_frame
from ecsportal.ssm.streams import RETRANSMIT_INTERVAL
from ecsportal.ssm.wsio import send_binary_batch

logger = logging.getLogger(__name__)
# The websockets library's frame dumps at DEBUG would include the token frame; its level is set
# in settings.LOGGING (WARNING), never here, so that a deployment's logging config is obeyed.
_WS_LOGGER = logging.getLogger("ecsportal.ssm.websockets")

PATH_PREFIX = "/v1/data-channel/"
REGISTER_PATH = "/v1/register"
WINDOW = 2048
"""Unacked output messages at most; beyond this the PTY is not read (bounded memory)."""
HANDSHAKE_TIMEOUT = 15.0
TOKEN_TIMEOUT = 10.0
DRAIN_TIMEOUT = 10.0
"""How long to wait for the client to ack the last output before ``channel_closed``."""


@dataclass(frozen=True)
class Faults:
    """Faults to inject into one session. Sequence numbers are the agent's output ones.

    Drop, duplicate, reorder and corrupt act on the first transmission only, so
    retransmission can repair them; ``withhold_acks`` names client input sequence numbers
    whose first ack is not sent.
    """

    drop: frozenset[int] = frozenset()
    duplicate: frozenset[int] = frozenset()
    reorder: frozenset[int] = frozenset()
    corrupt: frozenset[int] = frozenset()
    withhold_acks: frozenset[int] = frozenset()
    pause_after: int | None = None
    pause_seconds: float = 0.3
    stall_after: int | None = None
    close_after: int | None = None
    no_channel_closed: bool = False


@dataclass(frozen=True)
class SessionSpec:
    """What ExecuteCommand asked for. ``token`` is a secret: keep it out of ``repr``."""

    session_id: str
    token: str = field(repr=False)
    command: str
    container: str = ""
    cwd: str | None = None
    handshake: bool = False
    kms: bool = False
    faults: Faults = Faults()


def check_loopback(host: str) -> None:
    """Refuse to serve anything but loopback: sessions run real commands."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the emulator binds to loopback addresses only, not {host!r}")


class AgentEmulator:
    """The WebSocket server and session registry; runs inside one asyncio loop."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        output_delay: float = 0.0,
        default: SessionSpec | None = None,
        registration_key: str | None = None,
        registration_port: int | None = None,
    ) -> None:
        check_loopback(host)
        self.registration_key = registration_key
        self.registration_port = registration_port
        """With a key: registrations are also taken on this port, shared with the other
        processes of a fleet (SO_REUSEPORT; `ecsportal.ssm.fleet`), each of which answers
        with a stream URL on its own data-channel port."""
        self.host = host
        self.port = port
        self.output_delay = output_delay
        self.default = default
        self._sessions: dict[str, SessionSpec] = {}
        self._connected: set[str] = set()
        self.retransmissions: dict[str, int] = {}
        """Output messages resent by each finished session, by session ID: a benchmark
        that sees more than a handful is measuring the RTO, not the data path."""
        self._lock = threading.Lock()
        self._server: Server | None = None
        self._registration_server: Server | None = None

    async def start(self) -> None:
        options = {"compression": None, "max_size": 2**20, "ping_interval": 54, "logger": _WS_LOGGER}
        self._server = await serve(self._serve, self.host, self.port, process_request=self._check_path, **options)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.registration_key and self.registration_port is not None:
            self._registration_server = await serve(
                self._serve,
                self.host,
                self.registration_port,
                process_request=self._check_registration_path,
                reuse_port=True,
                backlog=1024,
                **options,
            )

    async def stop(self) -> None:
        for server in (self._registration_server, self._server):
            if server is not None:
                server.close()
                await server.wait_closed()

    def url_for(self, session_id: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{PATH_PREFIX}{session_id}?role=publish_subscribe"

    @property
    def registration_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = self.port if self.registration_port is None else self.registration_port
        return f"ws://{host}:{port}{REGISTER_PATH}"

    def register_session(
        self,
        *,
        session_id: str,
        token: str,
        command: str,
        container: str = "",
        cwd: str | None = None,
        handshake: bool = False,
        kms: bool = False,
        faults: Faults | None = None,
    ) -> str:
        """Make a session connectable and return its ``streamUrl``; callable from any thread."""
        if not session_id or "/" in session_id:
            raise ValueError("session IDs must be non-empty and contain no '/'")
        spec = SessionSpec(
            session_id,
            token,
            command,
            container,
            cwd,
            handshake,
            kms,
            faults or Faults(),
        )
        with self._lock:
            self._sessions[session_id] = spec
        return self.url_for(session_id)

    def forget_session(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def _lookup(self, session_id: str) -> SessionSpec | None:
        with self._lock:
            spec = self._sessions.get(session_id)
        if spec is None and self.default is not None:
            return SessionSpec(**{**self.default.__dict__, "session_id": session_id})
        return spec

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.registration_key and urlsplit(request.path).path == REGISTER_PATH:
            return None
        session_id = urlsplit(request.path).path.removeprefix(PATH_PREFIX)
        if not request.path.startswith(PATH_PREFIX) or not session_id:
            return connection.respond(HTTPStatus.NOT_FOUND, "no such data channel\n")
        if self._lookup(session_id) is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "no such session\n")
        return None

    def _check_registration_path(self, connection: ServerConnection, request: Request) -> Response | None:
        """The shared port takes registrations only: a data channel belongs on its process's own port."""
        if urlsplit(request.path).path == REGISTER_PATH:
            return None
        return connection.respond(HTTPStatus.NOT_FOUND, "registrations only on this port\n")

    async def _serve(self, ws: ServerConnection) -> None:
        if self.registration_key and urlsplit(ws.request.path).path == REGISTER_PATH:
            await self._register_remote(ws)
            return
        session_id = urlsplit(ws.request.path).path.removeprefix(PATH_PREFIX)
        spec = await self._accept_token(ws, session_id)
        if spec is None:
            return
        with self._lock:
            if session_id in self._connected:
                spec = None
            else:
                self._connected.add(session_id)
        if spec is None:
            await ws.close(1008, "session already connected")
            return
        run = _SessionRun(ws, spec, self.output_delay)
        try:
            await run.run()
        finally:
            with self._lock:
                self.retransmissions[session_id] = run.core.retransmissions
                self._connected.discard(session_id)
                self._sessions.pop(session_id, None)

    async def _register_remote(self, ws: ServerConnection) -> None:
        """One registration from another process: the key, then the session; answers its stream URL."""
        try:
            first = await asyncio.wait_for(ws.recv(), TOKEN_TIMEOUT)
            body = json.loads(first) if isinstance(first, str) else None
        except (TimeoutError, ConnectionClosed, ValueError):
            body = None
        fields = ("key", "session_id", "token", "command", "container")
        key = body.get("key") if isinstance(body, dict) else None
        if (
            not isinstance(key, str)
            or not hmac.compare_digest(key.encode(), (self.registration_key or "").encode())
            or not all(isinstance(body.get(name), str) for name in fields)
        ):
            with contextlib.suppress(ConnectionClosed):
                await ws.close(1008, "invalid registration")
            return
        try:
            url = self.register_session(
                session_id=body["session_id"], token=body["token"], command=body["command"], container=body["container"]
            )
        except ValueError as error:
            with contextlib.suppress(ConnectionClosed):
                await ws.close(1008, str(error))
            return
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps({"stream_url": url}))
            await ws.close()

    async def _accept_token(self, ws: ServerConnection, session_id: str) -> SessionSpec | None:
        """Read the OpenDataChannelInput text frame; close with 1008 unless it is valid."""
        try:
            first = await asyncio.wait_for(ws.recv(), TOKEN_TIMEOUT)
            body = json.loads(first) if isinstance(first, str) else None
        except (TimeoutError, ConnectionClosed, ValueError):
            body = None
        spec = self._lookup(session_id)
        token = body.get("TokenValue") if isinstance(body, dict) else None
        if (
            spec is None
            or not isinstance(token, str)
            or not isinstance(body.get("RequestId"), str)
            or not hmac.compare_digest(token.encode(), spec.token.encode())
        ):
            with contextlib.suppress(ConnectionClosed):
                await ws.close(1008, "invalid token")
            return None
        return spec


class _SessionRun:
    """One connected session: the command, its PTY, and the frames in both directions."""

    def __init__(self, ws: ServerConnection, spec: SessionSpec, output_delay: float) -> None:
        self.ws = ws
        self.spec = spec
        self.faults = spec.faults
        self.faulty = spec.faults != Faults()
        self.output_delay = output_delay
        self.core = AgentSession(session_id=spec.session_id, handshake=spec.handshake, kms=spec.kms)
        self.loop = asyncio.get_running_loop()
        self.master: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.scratch: str | None = None
        self.size = (80, 24)
        self.pending_input = bytearray()
        self.wake = asyncio.Event()
        self.window_open = asyncio.Event()
        self.handshake: asyncio.Future[HandshakeDone] = self.loop.create_future()
        self.lost = asyncio.Event()
        self.stalled = False
        self.held: bytes | None = None
        self.withheld: set[int] = set()
        self.watch = {
            spec.faults.close_after,
            spec.faults.stall_after,
            spec.faults.pause_after,
        }
        self.tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        self.tasks = [
            asyncio.create_task(self._read_socket()),
            asyncio.create_task(self._write_socket()),
            asyncio.create_task(self._tick()),
        ]
        try:
            await self._converse()
        finally:
            for task in self.tasks:
                task.cancel()
            await self._stop_command()

    async def _converse(self) -> None:
        error = await self._handshake() if self.core.handshake else ""
        if not error:
            error = self._spawn()
        if error:
            await self._close_channel(error)
            return
        pump = asyncio.create_task(self._pump_output())
        lost = asyncio.create_task(self.lost.wait())
        await asyncio.wait({pump, lost}, return_when=asyncio.FIRST_COMPLETED)
        lost.cancel()
        if self.lost.is_set():
            pump.cancel()
            return
        await self._drain()
        await self._close_channel("")

    async def _handshake(self) -> str:
        """Run the handshake; return an error text for ``channel_closed`` or ""."""
        self.core.begin(self.loop.time())
        self.wake.set()
        try:
            done = await asyncio.wait_for(asyncio.shield(self.handshake), HANDSHAKE_TIMEOUT)
        except TimeoutError:
            return "Handshake timed out. Please ensure that you have the latest version of the session manager plugin."
        return "" if done.ok else done.error

    def _spawn(self) -> str:
        try:
            argv = shlex.split(self.spec.command)
        except ValueError as error:
            return f"Unable to start command: {error}"
        if not argv:
            return "Unable to start command: empty command"
        cwd = self.spec.cwd or tempfile.mkdtemp(prefix=f"ssm-{self.spec.session_id[:40]}-")
        self.scratch = None if self.spec.cwd else cwd
        master, slave = os.openpty()
        _set_size(master, *self.size)
        env = dict(os.environ)
        env.setdefault("TERM", "xterm")
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=cwd,
                env=env,
                start_new_session=True,
                preexec_fn=_take_controlling_tty,  # Ctrl-C must reach the command
            )
        except OSError as error:
            os.close(master)
            return f"Unable to start command: exec: {argv[0]!r}: {error.strerror or error}"
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        self.master = master
        if self.pending_input:
            self._write_pty(b"")
        return ""

    # -- output ----------------------------------------------------------------------------

    async def _pump_output(self) -> None:
        """Read the PTY until EOF and send it as output messages, within the window."""
        if self.output_delay:
            await asyncio.sleep(self.output_delay)
        master = self.master
        assert master is not None
        carry = b""
        while True:
            while self.core.unacked >= WINDOW or self.core.paused or self.stalled:
                self.window_open.clear()
                await self.window_open.wait()
            try:
                data = os.read(master, 65536)
            except BlockingIOError:
                await self._readable(master)
                continue
            except OSError as error:
                if error.errno != errno.EIO:
                    raise
                data = b""
            now = self.loop.time()
            chunks, carry = utf8_chunks(carry + data, final=not data)
            for chunk in chunks:
                self.core.send_output(chunk, now)
            self.wake.set()
            if not data:
                return

    async def _readable(self, fd: int) -> None:
        ready = self.loop.create_future()
        # The reader may fire again before this coroutine resumes (a busy loop): once is enough.
        self.loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        try:
            await ready
        finally:
            self.loop.remove_reader(fd)

    async def _drain(self) -> None:
        """Give the client time to ack everything (retransmitting) before the end."""
        deadline = self.loop.time() + DRAIN_TIMEOUT
        while (self.core.unacked or self.held) and self.loop.time() < deadline:
            if self.lost.is_set():
                return
            await asyncio.sleep(0.02)

    async def _close_channel(self, output: str) -> None:
        if self.lost.is_set() or self.stalled:
            await self.lost.wait() if self.stalled else None
            return
        if self.faults.no_channel_closed:
            with contextlib.suppress(Exception):
                await self.ws.close()
            return
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(self.core.channel_closed(output))
        # The Go client leaves without a close frame; do not wait for one for long.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.lost.wait(), 2.0)
        with contextlib.suppress(Exception):
            await self.ws.close()

    # -- the socket --------------------------------------------------------------------------

    async def _read_socket(self) -> None:
        core = self.core
        try:
            async for message in self.ws:
                if isinstance(message, str):
                    continue
                for event in core.receive_data(message, self.loop.time()):
                    self._on_event(event)
                self.wake.set()
                if core.unacked < WINDOW // 2:
                    self.window_open.set()
        except ConnectionClosed:
            pass
        finally:
            self.lost.set()

    def _on_event(self, event: object) -> None:
        if isinstance(event, InputData):
            self._write_pty(event.data)
        elif isinstance(event, Resize):
            self.size = (event.cols, event.rows)
            if self.master is not None:
                _set_size(self.master, event.cols, event.rows)
        elif isinstance(event, HandshakeDone):
            if not self.handshake.done():
                self.handshake.set_result(event)
        elif isinstance(event, TerminateRequested):
            self._signal(signal.SIGHUP)
        elif isinstance(event, GaveUp):
            self.ws.transport.abort()

    async def _write_socket(self) -> None:
        """The only writer: applies faults in order, so "reorder" means what it says."""
        while True:
            await self.wake.wait()
            self.wake.clear()
            batch: list[bytes] = []
            for item in self.core.take_outbox():
                if self.stalled:
                    break
                batch += self._inject(item)
                if item.first and item.kind == "output" and item.sequence in self.watch:
                    await send_binary_batch(self.ws, batch)
                    batch = []
                    await self._after_output(item.sequence)
            if batch and not self.stalled:
                await send_binary_batch(self.ws, batch)

    def _inject(self, item: Outgoing) -> list[bytes]:
        if not self.faulty and self.held is None:
            return [item.data]
        faults, data, seq = self.faults, item.data, item.sequence
        out: list[bytes] = []
        if item.kind == "ack" and seq in faults.withhold_acks and seq not in self.withheld:
            self.withheld.add(seq)
            return out
        if item.kind == "output" and item.first:
            if seq in faults.drop:
                return out
            if seq in faults.corrupt:
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            if seq in faults.reorder and self.held is None:
                self.held = data
                return out
            out.append(data)
            if seq in faults.duplicate:
                out.append(data)
        else:
            out.append(data)
        if self.held is not None:
            out.append(self.held)
            self.held = None
        return out

    async def _after_output(self, sequence: int) -> None:
        faults = self.faults
        if sequence == faults.close_after:
            self.ws.transport.abort()
        elif sequence == faults.stall_after:
            self.stalled = True
        elif sequence == faults.pause_after:
            await self._pause(faults.pause_seconds)  # the writer sends nothing meanwhile

    async def _pause(self, seconds: float) -> None:
        self.core.paused = True
        await self.ws.send(encode_frame(Frame(f.PAUSE_PUBLICATION)))
        await asyncio.sleep(seconds)
        await self.ws.send(encode_frame(Frame(f.START_PUBLICATION)))
        self.core.paused = False
        self.window_open.set()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(RETRANSMIT_INTERVAL)
            for event in self.core.tick(self.loop.time()):
                self._on_event(event)
            if self.held is not None or self.core.outbox:
                self.wake.set()

    # -- the command ------------------------------------------------------------------------

    def _write_pty(self, data: bytes) -> None:
        self.pending_input += data
        if self.master is None or not self.pending_input:
            return
        try:
            written = os.write(self.master, self.pending_input)
        except BlockingIOError:
            written = 0
        except OSError:
            self.pending_input.clear()
            return
        del self.pending_input[:written]
        if self.pending_input:
            self.loop.call_later(0.01, self._write_pty, b"")

    def _signal(self, signum: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signum)

    async def _stop_command(self) -> None:
        """Reap the command (killing it if the client left early) and clean up."""
        if self.proc is not None:
            for signum in (None, signal.SIGHUP, signal.SIGKILL):
                if signum is not None:
                    self._signal(signum)
                for _ in range(20):
                    if self.proc.poll() is not None:
                        break
                    await asyncio.sleep(0.05)
                if self.proc.poll() is not None:
                    break
        if self.master is not None:
            with contextlib.suppress(OSError):
                os.close(self.master)
            self.master = None
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _take_controlling_tty() -> None:
    """In the child, after setsid: make the PTY the controlling terminal (for Ctrl-C), and give
    the command default signal handling, as the agent's own children have. A process started in
    the background by a non-interactive shell (`manage.py demo &`) ignores SIGINT and SIGQUIT,
    and an ignored signal stays ignored across exec: Ctrl-C in a shell would then do nothing."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    for signum in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


class EmulatorThread:
    """An ``AgentEmulator`` running its own loop in a daemon thread, for sync callers."""

    def __init__(self, emulator: AgentEmulator) -> None:
        self.emulator = emulator
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="ssm-emulator", daemon=True)

    def start(self) -> EmulatorThread:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.emulator.start())
        except OSError as error:  # cannot bind: handed to the starting thread
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.close()

    @property
    def port(self) -> int:
        return self.emulator.port

    def url_for(self, session_id: str) -> str:
        return self.emulator.url_for(session_id)

    @property
    def retransmissions(self) -> dict[str, int]:
        return self.emulator.retransmissions

    @property
    def registration_url(self) -> str:
        return self.emulator.registration_url

    def register_session(self, **kwargs: object) -> str:
        """See ``AgentEmulator.register_session``; safe from any thread."""
        return self.emulator.register_session(**kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self.emulator.stop(), self.loop)
        with contextlib.suppress(Exception):
            future.result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def start_in_thread(host: str = "127.0.0.1", port: int = 0, **options: object) -> EmulatorThread:
    """Start an emulator on loopback in a daemon thread and return its handle."""
    return EmulatorThread(AgentEmulator(host=host, port=port, **options)).start()  # type: ignore[arg-type]


def remote_registrar(url: str, key: str, *, timeout: float = 30.0) -> Callable[..., str]:
    """A registrar for an emulator in another process: `register(session_id=, token=, command=, container=)`
    sends the session over `url` (its ``/v1/register``) and returns the stream URL. Sync, any thread.

    `timeout` is generous: one emulator serves every session on one event loop, and with hundreds
    of commands printing at once (`tests/benchmarks/scale.py`, 500 runs) it answered a
    registration only after more than the 10 s this once allowed, failing the run's ExecuteCommand
    for a reason of the test bench's own. `url` may be a fleet's (`ecsportal.ssm.fleet`): the
    process that takes the registration answers a stream URL on its own port."""
    from websockets.sync.client import connect

    def register(*, session_id: str, token: str, command: str, container: str = "") -> str:
        message = {"key": key, "session_id": session_id, "token": token, "command": command, "container": container}
        with connect(url, open_timeout=timeout, close_timeout=timeout, compression=None, logger=_WS_LOGGER) as ws:
            ws.send(json.dumps(message))
            try:
                answer = json.loads(ws.recv(timeout))
            except ConnectionClosed as closed:
                raise RuntimeError(
                    f"the emulator refused the session: {closed.rcvd.reason if closed.rcvd else ''}"
                ) from None
        return str(answer["stream_url"])

    return register


# -- command line ------------------------------------------------------------------------------


async def _serve_forever(emulator: AgentEmulator) -> None:
    await emulator.start()
    print(
        f"serving {emulator.url_for('<any id>')} (runs real commands on this machine)",
        file=sys.stderr,
    )
    await asyncio.Future()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ecsportal.ssm.emulator",
        description="Serve ECS Exec data-channel sessions of one local command (loopback only).",
    )
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT, loopback only")
    parser.add_argument("--token", required=True)
    parser.add_argument("--handshake", action="store_true")
    parser.add_argument("--kms", action="store_true", help="demand KMS in the handshake")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    host, _, port = args.listen.rpartition(":")
    host = host.strip("[]")
    try:
        emulator = AgentEmulator(
            host=host,
            port=int(port),
            default=SessionSpec(
                "",
                args.token,
                shlex.join(command),
                handshake=args.handshake,
                kms=args.kms,
            ),
        )
    except ValueError as error:
        parser.error(str(error))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(emulator))
    return 0


if __name__ == "__main__":
    sys.exit(main())
