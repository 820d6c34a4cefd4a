"""Several SSM agent emulator processes behind one registration port: a fleet of agents.

In ECS every container runs an agent of its own; one emulator process serving every session on
one event loop was instead the slowest part of `tests/benchmarks/scale.py` (read directly, its
p99 was seconds at 200 streams). `EmulatorFleet(processes, registration_key=…)` starts
`processes` children (``python -m ecsportal.ssm.fleet``), each an ``AgentEmulator`` on a loop
of its own with a data-channel port of its own, and all listening for registrations on one
shared port (``SO_REUSEPORT``: the kernel spreads the incoming connections over them by
address hash). Whichever child accepts a registration keeps the session and answers a stream
URL on its own port, so a session's registration and its data channel meet in the same process,
with no state shared between processes. Each session behaves exactly as with one emulator.

The registration key goes to each child on its standard input, never on a command line; a
child stops (its sessions' commands with it) when that input closes, so none outlives the
process that started the fleet. ``remote_registrar(fleet.registration_url, key)`` registers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ecsportal.ssm.emulator import AgentEmulator, check_loopback

READY = "ready"
START_TIMEOUT = 60.0
"""Seconds for every process of a fleet to listen: Python starting under load is slow."""


class EmulatorFleet:
    """`processes` emulator processes sharing one registration port on loopback."""

    def __init__(self, processes: int, *, registration_key: str, host: str = "127.0.0.1") -> None:
        check_loopback(host)
        if processes < 1:
            raise ValueError("a fleet has at least one process")
        if not registration_key:
            raise ValueError("a fleet is reached only over its registration port: give it a key")
        self.processes = processes
        self.host = host
        self.registration_key = registration_key
        self.registration_port = 0
        self.ports: list[int] = []
        """Each child's own data-channel port, in `procs` order."""
        self.procs: list[subprocess.Popen[str]] = []

    @property
    def registration_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.registration_port}/v1/register"

    def start(self) -> EmulatorFleet:
        # Hold a free port (bound, not listening: the kernel hands connections only to the
        # listening sockets of the group) until every child listens on it too.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        holder = socket.socket(family, socket.SOCK_STREAM)
        try:
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            holder.bind((self.host, 0))
            self.registration_port = holder.getsockname()[1]
            root = str(Path(__file__).resolve().parents[2])
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
            for _ in range(self.processes):
                proc = subprocess.Popen(
                    [sys.executable, "-m", "ecsportal.ssm.fleet", "--host", self.host],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    env=env,
                    text=True,
                )
                self.procs.append(proc)
                assert proc.stdin is not None
                proc.stdin.write(f"{self.registration_key}\n{self.registration_port}\n")
                proc.stdin.flush()
            deadline = time.monotonic() + START_TIMEOUT
            for proc in self.procs:
                self.ports.append(_read_ready(proc, deadline))
        except BaseException:
            self.stop()
            raise
        finally:
            holder.close()
        return self

    def stop(self) -> None:
        """Close each child's input (it stops its server and its sessions' commands), then wait."""
        for proc in self.procs:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def _read_ready(proc: subprocess.Popen[str], deadline: float) -> int:
    """The child's data-channel port, from its one line "ready PORT"."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
    line = proc.stdout.readline() if ready else ""
    word, _, port = line.strip().partition(" ")
    if word != READY or not port.isdigit():
        raise RuntimeError(f"an emulator process of the fleet did not start (exit code {proc.poll()})")
    return int(port)


# -- a child -------------------------------------------------------------------------------------


async def _serve(host: str, key: str, registration_port: int) -> None:
    emulator = AgentEmulator(host=host, port=0, registration_key=key, registration_port=registration_port)
    await emulator.start()
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, done.set)

    def on_input() -> None:
        if not os.read(sys.stdin.fileno(), 4096):  # the parent closed it, or is gone
            loop.remove_reader(sys.stdin.fileno())
            done.set()

    loop.add_reader(sys.stdin.fileno(), on_input)
    print(f"{READY} {emulator.port}", flush=True)
    await done.wait()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(emulator.stop(), 10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ecsportal.ssm.fleet",
        description="One process of an emulator fleet (started by EmulatorFleet; reads its key and "
        "the shared registration port from standard input).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # Read byte by byte up to each newline: a buffered read would take the rest of stdin, whose
    # end is the signal to stop.
    key = _read_line()
    port = _read_line()
    if not key or not port.isdigit():
        print("expected the registration key and port on standard input", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, key, int(port)))
    return 0


def _read_line() -> str:
    data = bytearray()
    while (byte := os.read(sys.stdin.fileno(), 1)) and byte != b"\n":
        data += byte
    return data.decode()


if __name__ == "__main__":
    sys.exit(main())
