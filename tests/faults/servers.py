"""A PostgreSQL and a Redis of a test's own, to stop, restart and kill at will.

Never the machine's shared servers (5432, 6379): each starts on a free port, in a directory
of its own, and is stopped (and its files removed) at teardown. PostgreSQL refuses to run as
root, so under root (CI) its cluster belongs to the `postgres` user and every pg_ctl call runs
as that user; elsewhere it runs as whoever runs the tests. The binaries come from PATH or,
for PostgreSQL, from Debian's /usr/lib/postgresql/<version>/bin.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.deployment import free_port


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def missing_binaries() -> list[str]:
    needed = {"initdb": _pg_bin("initdb"), "pg_ctl": _pg_bin("pg_ctl"), "redis-server": shutil.which("redis-server")}
    return [name for name, path in needed.items() if path is None]


def _wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} within {timeout} s")


def _answers(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class LocalPostgres:
    """`initdb` + `pg_ctl` on a free port; trust authentication on loopback for the user `postgres`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ecsportal-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse root
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._pg_ctl = _pg_bin("pg_ctl")
        self._run(
            [_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
        )
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"
            )
        if self._as:
            subprocess.run(["chown", "-R", "postgres:postgres", str(self.root)], check=True)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list) -> None:
        done = subprocess.run([*self._as, *map(str, args)], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def start(self) -> None:
        self._run([self._pg_ctl, "-D", self.data, "-l", self.log, "-w", "-t", "60", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._run([self._pg_ctl, "-D", self.data, "-m", mode, "-w", "-t", "60", "stop"])

    def restart(self, mode: str = "fast") -> None:
        """`pg_ctl restart -m fast`: every connection is cut, the server is back within a second."""
        self._run([self._pg_ctl, "-D", self.data, "-l", self.log, "-m", mode, "-w", "-t", "60", "restart"])

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop("immediate")
            except Exception as exc:  # reported, never hiding the test's own failure
                print(f"could not stop the test's PostgreSQL: {exc}")
        shutil.rmtree(self.root, ignore_errors=True)


class LocalRedis:
    """`redis-server` on a free port, keeping its data across a restart (as a deployed Redis with
    persistence does: SHUTDOWN writes the snapshot, the next start loads it)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ecsportal-faults-redis-"))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.root / "server.log", "ab")  # the child keeps it
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
                "--save", "3600 1", "--appendonly", "no", "--maxclients", "2000",
            ],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        _wait(lambda: _answers(self.port), 20, f"Redis did not answer on {self.port}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: Redis saves its snapshot and exits; SIGKILL: gone with whatever it held."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(20)
        self.proc = None

    def restart(self, down: float = 1.0, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        time.sleep(down)
        self.start()

    def close(self) -> None:
        try:
            self.stop(signal.SIGKILL)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_redis() -> Iterator[str]:
    """A `redis-server` of the caller's own on a free port (never the machine's): its URL, and
    the server gone afterwards. Skips the test where Redis is not installed."""
    if shutil.which("redis-server") is None:
        import pytest

        pytest.skip("redis-server is not installed")
    server = LocalRedis()
    try:
        server.start()
        yield server.url
    finally:
        server.close()
