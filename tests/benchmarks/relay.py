"""What the portal's relay adds to ECS Exec output: latency per line, throughput, server memory.

Not a test: ``python tests/benchmarks/relay.py`` from the repository root.

A child process serves the portal as `manage.py demo` does (daphne, moto, the SSM agent
emulator, its own SQLite database, in-process runner), but with DEBUG off, as deployed. This process measures, in the same
run, (a) an `SsmClient` reading its own emulator directly and (b) a WebSocket client reading
the same kind of run through the portal (`ws/runs/<pk>/`), the browser's path: ExecuteCommand,
the runner, the transcript rows, the channel layer, the consumer, JSON and base64.

- latency: the command prints ``L <time.time()>`` lines; a line's latency is its arrival time
  minus that timestamp. "added" = relay percentile − direct percentile, with 1 and with 100
  concurrent runs (only lines that arrive live are counted, not the replay). The lines of a
  round start together (`StartGate`), once every command runs and every viewer has its
  replay, each run at its own phase: starting 100 runs is not what is measured.
- CPU: the server process's user + system CPU time while the 100 runs' lines stream, per line
  relayed (`cpu_us_per_line`), against the same for a bare asyncio relay in a process of its
  own (`bare_cpu_us_per_line`: the project's `SsmClient` and a WebSocket server sending the same
  JSON/base64 frames; no Django, Channels or database). The 100-run round lasts at least 10 s.
- throughput: a 50 MB base64 stream (no newlines, so the terminal passes it unchanged),
  seconds from start to the end of the stream, direct / relay.
- memory: the server's RSS (VmRSS, sampled every 50 ms) growth while it relays 100 MB.

Each phase of a round (starting the runs, waiting for every command and viewer, streaming)
has a timeout (`--phase-timeout`): past it the benchmark stops and its last line says which
phase, how many runs were ready, the first reader's failure and the runs' statuses, instead
of hanging. A viewer that hears nothing for 15 s asks for the status, as the page does
(`ends_by_asking`: viewers whose run's end came only then, i.e. was lost). `RELAY_BENCH_PYSPY=<file>` samples the server with
py-spy during the portal's 100-run round (collapsed stacks; a name ending `.json`: speedscope,
samples in time order); `RELAY_BENCH_TIMELINE=<file>` writes
each round's live lines (arrival time, latency) to `<file>.<round>`.

Runs are started through a benchmark-only ASGI wrapper in the child (POST /__bench/run calls
`runs.services.run_request` as the operator), since the run form is not what is measured.
The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ACK_BYTES = 256 * 1024
ASK_AFTER = 15.0  # seconds of silence before a viewer asks for the status (run-terminal.js)
ENDS_BY_ASKING = [0]  # portal viewers whose run's end came only when they asked (the end was lost)
sys.path.insert(0, str(ROOT))

LINES = (
    "import fcntl,sys,time\n"
    "n=int(sys.argv[1]); gap=float(sys.argv[2])\n"
    "sys.stdout.write('R\\n'); sys.stdout.flush()\n"
    "with open(sys.argv[3]) as gate: fcntl.flock(gate, fcntl.LOCK_SH)\n"
    "time.sleep(float(sys.argv[4]))\n"
    "for i in range(n):\n"
    "    sys.stdout.write('L %.6f\\n' % time.time()); sys.stdout.flush(); time.sleep(gap)\n"
)
GENERATOR = (
    "import base64,random,sys\n"
    "n=int(sys.argv[1]); r=random.Random(7)\n"
    "block=base64.b64encode(r.randbytes(786432))\n"
    "out=sys.stdout.buffer\n"
    "while n>0:\n"
    "    piece=block[:n]; out.write(piece); n-=len(piece)\n"
    "out.flush()\n"
)


def lines_command(n: int, gap: float, gate: str, phase: float) -> str:
    return shlex.join([sys.executable, "-c", LINES, str(n), str(gap), gate, f"{phase:.6f}"])


class StartGate:
    """Holds every `lines` command before its first line until `open()`: the lines start only
    once every command of a round is running (it printed `R`; the agent starts each command
    in turn, blocking while it does) and every viewer is connected and has its replay, so what
    is measured is streaming with N runs, not N runs being started. A lock file, not a sleep:
    starting 100 runs takes a varying time on a loaded machine."""

    def __init__(self) -> None:
        import fcntl

        fd, self.path = tempfile.mkstemp(prefix="relay-gate-")
        self._file = os.fdopen(fd, "w")
        fcntl.flock(self._file, fcntl.LOCK_EX)

    def open(self) -> None:
        self._file.close()  # drops the lock; the commands waiting on it go (or pass it later)

    def remove(self) -> None:
        os.unlink(self.path)


def generator_command(size: int) -> str:
    return shlex.join([sys.executable, "-c", GENERATOR, str(size)])


# -- the server (child process) ---------------------------------------------------------------------


def serve(port: int, db: str, agent: str) -> None:
    """The portal as deployed (DEBUG off: with DEBUG on, Django formats every query's SQL with
    its parameters, each transcript row's bytes, for its query log), set up by `_serve`, with
    POST /__bench/run starting a run as the operator."""
    from tests.benchmarks._serve import bench_app, boot_portal, portal_environment, run_daphne

    portal_environment(db)
    booted = boot_portal(agent)
    from ecsportal.aws import ecs
    from ecsportal.runs.services import run_request

    prod, operator = booted["accounts"]["prod"], booted["operator"]
    prod.approvals_for_commands = 0
    prod.save()
    config = prod.aws_config()
    tasks = ecs.describe_tasks(config, "eu-west-1", "prod-web", ecs.list_task_arns(config, "eu-west-1", "prod-web"))
    task = next(t.arn for t in tasks if t.task_definition.startswith("web:"))

    def start(body: dict) -> int:
        return run_request(
            actor=operator,
            account_pk=prod.pk,
            region="eu-west-1",
            cluster="prod-web",
            task=task,
            container="app",
            command=body["command"],
            cols=200,
            rows=50,
        ).pk

    print(json.dumps({"cookie": booted["cookie"], "pid": os.getpid()}), flush=True)
    profile_to = os.environ.get("RELAY_BENCH_PROFILE")  # a file for the server's cProfile stats
    if profile_to:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    run_daphne(bench_app({"run": start}), port)
    if profile_to:
        profiler.disable()
        profiler.dump_stats(profile_to)


# -- the agent (its own process) --------------------------------------------------------------------


def run_agent(address_file: str) -> None:
    """The SSM agent emulator in a process of its own, shared by the direct and the relayed
    runs: in the portal's process it took the portal's CPU (and its GIL), which no real
    agent does, and the direct client's likewise. Sessions are registered over a local
    `multiprocessing` connection."""
    from multiprocessing.connection import Listener

    from ecsportal.ssm.emulator import start_in_thread

    emulator = start_in_thread()
    key = bytes.fromhex(os.environ["RELAY_AGENT_KEY"])
    # The default backlog (1) drops connects that arrive together: a round's 100 first registrations
    # each open a connection (one per thread), and a dropped one held its run past the phase's timeout.
    with Listener(("127.0.0.1", 0), backlog=128, authkey=key) as listener:
        Path(address_file).write_text(json.dumps(listener.address))

        def answer(connection) -> None:
            with connection:
                while True:
                    try:
                        request = connection.recv()
                    except EOFError:
                        return
                    connection.send(emulator.register_session(**request))

        while True:
            threading.Thread(target=answer, args=(listener.accept(),), daemon=True).start()


class RemoteAgent:
    """`register_session` on the agent process, from any thread."""

    def __init__(self, address_file: str) -> None:
        self.address = tuple(json.loads(Path(address_file).read_text()))
        self.key = bytes.fromhex(os.environ["RELAY_AGENT_KEY"])
        self._local = threading.local()

    def register_session(self, **request: str) -> str:
        from multiprocessing.connection import Client as Connect

        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = Connect(self.address, authkey=self.key)
        connection.send(request)
        return connection.recv()


def start_agent(workdir: str) -> tuple[subprocess.Popen, str]:
    address_file = f"{workdir}/agent.json"
    agent = subprocess.Popen([sys.executable, __file__, "--agent", address_file], cwd=ROOT)
    for _ in range(300):
        if Path(address_file).exists() and Path(address_file).read_text():
            return agent, address_file
        time.sleep(0.05)
    raise RuntimeError("the agent process did not start")


# -- the bare relay (its own process) ----------------------------------------------------------------


def run_bare(port: int, agent: str) -> None:
    """What relaying costs without the portal: asyncio, the project's `SsmClient` and a WebSocket
    server sending the same frames (JSON, base64, a seq) to the viewer; no Django, Channels or
    database. The first message on a socket is the command; then its output, then the end."""
    from websockets.asyncio.server import serve as ws_serve

    from ecsportal.ssm.client import SsmClient

    remote = RemoteAgent(agent)

    async def relay(ws) -> None:
        command = await ws.recv()
        name = f"bare-{time.time_ns()}"
        url = await asyncio.to_thread(remote.register_session, session_id=name, token="t", command=command)
        await ws.send(json.dumps({"type": "replayed", "seq": 0}))
        seq = 0
        for attempt in range(8):  # as the portal's runner: a channel not opened before the token is opened again
            # No idle timeout, as the runner's: the commands wait silently for the round's gate.
            session = SsmClient(url, "t", idle_timeout=None)
            await session.open()
            if session.end is None or session.token_sent:
                break
            await session.close()
            await asyncio.sleep(0.5 * 2**attempt)
        try:
            await session.resize(200, 50)
            async for chunk in session:
                seq += 1
                await ws.send(json.dumps({"type": "output", "seq": seq, "data": base64.b64encode(chunk).decode()}))
        finally:
            await session.close()
        # A session that ended otherwise than normally fails its reader, not the round's wait.
        ended = session.end
        status = "succeeded" if ended is not None and ended.kind == "normal" else "error"
        reason = "" if status == "succeeded" else repr(ended)
        await ws.send(json.dumps({"type": "status", "status": status, "finished": True, "end_reason": reason}))

    async def serve_forever() -> None:
        async with ws_serve(relay, "127.0.0.1", port, max_size=2**24, compression=None):
            print(json.dumps({"pid": os.getpid()}), flush=True)
            await asyncio.Future()

    asyncio.run(serve_forever())


class Bare:
    def __init__(self, port: int) -> None:
        self.port = port

    async def read(self, command: str, on_data, on_replayed=None) -> float:
        from websockets.asyncio.client import connect

        live = False
        async with connect(f"ws://127.0.0.1:{self.port}/", max_size=2**24, compression=None) as ws:
            await ws.send(command)
            async for text in ws:
                message = json.loads(text)
                if message["type"] == "output":
                    on_data(base64.b64decode(message["data"]), time.time(), live)
                elif message["type"] == "replayed":
                    live = True
                    if on_replayed is not None:
                        on_replayed()
                elif message["type"] == "status" and message["finished"]:
                    if message["status"] != "succeeded":
                        raise RuntimeError(f"bare relay: the session ended {message['end_reason']}")
                    return time.time()
        raise RuntimeError("socket closed before the run ended")


def run_statuses(db: str) -> dict[str, int]:
    """How many of the portal's runs are in each status (a phase that timed out says where the runs stand)."""
    import sqlite3

    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
            return dict(connection.execute("SELECT status, COUNT(*) FROM runs_run GROUP BY status").fetchall())
    except sqlite3.Error as exc:
        return {"error": str(exc)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the clients -------------------------------------------------------------------------------------


class Portal:
    def __init__(self, port: int, cookie: str) -> None:
        self.port, self.cookie = port, cookie

    def start(self, command: str) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/__bench/run", data=json.dumps({"command": command}).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            return int(answer.read())

    async def read(self, pk: int, on_data, on_replayed=None) -> float:
        """Read run `pk` to its end; `on_data(bytes, arrival, live)`; returns the time the stream ended."""
        from websockets.asyncio.client import connect

        live = False
        async with connect(
            f"ws://127.0.0.1:{self.port}/ws/runs/{pk}/",
            additional_headers={"Cookie": f"sessionid={self.cookie}", "Origin": "http://localhost"},
            max_size=2**24,
            compression=None,
        ) as ws:
            unacked, asked = 0, False
            while True:
                try:
                    text = await asyncio.wait_for(ws.recv(), ASK_AFTER)
                except TimeoutError:  # as run-terminal.js does after a silence: ask for the status
                    asked = True
                    await ws.send(json.dumps({"type": "status"}))
                    continue
                message = json.loads(text)
                if message["type"] == "status" and message["finished"] and asked:
                    ENDS_BY_ASKING[0] += 1  # the end came only because the viewer asked: it was lost
                asked = asked and message["type"] != "output"
                if message["type"] == "output":
                    data = base64.b64decode(message["data"])
                    on_data(data, time.time(), live)
                    unacked += len(data)
                    if unacked >= ACK_BYTES:  # as run-terminal.js does: the server sends at most a window ahead
                        unacked = 0
                        await ws.send(json.dumps({"type": "ack", "seq": message["seq"]}))
                elif message["type"] == "replayed":
                    live = True
                    if on_replayed is not None:
                        on_replayed()
                elif message["type"] == "status" and message["finished"]:
                    if message["status"] not in ("succeeded",):
                        raise RuntimeError(f"run {pk} ended {message['status']}: {message['end_reason']}")
                    return time.time()


class LineClock:
    """Latency of each `L <timestamp>` line: arrival minus timestamp. `on_ready` is called once
    the command's `R` line has arrived (it is running and waits for the gate) and, through a
    viewer, once the viewer has its replay too (`replayed()`)."""

    def __init__(self, on_ready=None, viewer: bool = False) -> None:
        self.carry = b""
        self.latencies: list[float] = []
        self.arrivals: list[float] = []
        self._on_ready = on_ready
        self._waiting = {"R", "replayed"} if viewer else {"R"}

    def _got(self, what: str) -> None:
        if what in self._waiting:
            self._waiting.discard(what)
            if not self._waiting and self._on_ready is not None:
                self._on_ready()

    def replayed(self) -> None:
        self._got("replayed")

    def feed(self, data: bytes, arrival: float, count: bool = True) -> None:
        data = self.carry + data
        *lines, self.carry = data.split(b"\n")
        for line in lines:
            line = line.strip()
            if line.startswith(b"L "):
                if count:
                    self.latencies.append((arrival - float(line[2:])) * 1000)
                    self.arrivals.append(arrival)
            elif line == b"R":
                self._got("R")


async def direct_run(emulator, command: str, name: str, on_data) -> float:
    from ecsportal.ssm.client import SsmClient

    url = emulator.register_session(session_id=name, token="t", command=command)
    async with SsmClient(url, "t", idle_timeout=None) as session:
        await session.resize(200, 50)
        async for chunk in session:
            on_data(chunk, time.time(), True)
    return time.time()


def _profile(pid: int | None, seconds: float) -> subprocess.Popen | None:
    """With RELAY_BENCH_PYSPY=<file>: py-spy samples the server while the portal round's lines
    stream (raw collapsed stacks, every thread; `pip install py-spy`)."""
    out = os.environ.get("RELAY_BENCH_PYSPY")
    if not (out and pid):
        return None
    spy = Path(sys.executable).with_name("py-spy")
    duration = str(max(1, int(seconds) - 4))  # the steady part: from 2 s in to 2 s before the end
    fmt = "speedscope" if out.endswith(".json") else "raw"
    command = [str(spy), "record", "-p", str(pid), "-d", duration, "-r", "200", "--nonblocking", "-f", fmt, "-o", out]
    return subprocess.Popen(["sh", "-c", f"sleep 2; exec {shlex.join(command)}"], stdout=subprocess.DEVNULL)


class Timeouts:
    """Seconds each phase of a round may last before the benchmark reports where it stands and
    stops (rather than hang): starting the runs, waiting until every command runs and every
    viewer has its replay, and streaming (on top of the lines' own duration)."""

    start = 120.0
    ready = 120.0
    stream = 120.0


timeouts = Timeouts()


class PhaseTimeout(Exception):
    pass


class phase:  # noqa: N801 (used as a context manager, like asyncio.timeout)
    """`async with phase(what, seconds, state)`: past `seconds`, raise `PhaseTimeout` saying
    which phase it was and `state()` (who is ready, which reader failed)."""

    def __init__(self, what: str, seconds: float, state) -> None:
        self.what, self.seconds, self.state = what, seconds, state

    async def __aenter__(self) -> None:
        self._timeout = asyncio.timeout(self.seconds)
        await self._timeout.__aenter__()

    async def __aexit__(self, kind, exc, tb) -> bool:
        try:
            await self._timeout.__aexit__(kind, exc, tb)
        except TimeoutError:
            raise PhaseTimeout(f"{self.what}: not done in {self.seconds:g} s; {self.state()}") from None
        return False


def _state(clocks: list[LineClock], tasks: list[asyncio.Task]) -> str:
    ready = sum(1 for c in clocks if not c._waiting)
    running = sum(1 for c in clocks if "R" not in c._waiting)
    failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
    first = f"; first failure: {failed[0].exception()!r}" if failed else ""
    return (
        f"{len(tasks)} started, {running} commands running, {ready} ready, "
        f"{sum(1 for t in tasks if t.done())} readers ended, {len(failed)} failed{first}"
    )


async def _unless_one_fails(waiting, tasks: list[asyncio.Task]) -> None:
    """Await `waiting`, unless one of `tasks` (the readers) fails first: raise its error."""
    waiter = asyncio.ensure_future(waiting)
    try:
        while not waiter.done():
            await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()
            tasks = [t for t in tasks if not t.done()]
        waiter.result()
    finally:
        waiter.cancel()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def latency(
    portal: Portal,
    emulator,
    runs: int,
    lines: int,
    gap: float,
    *,
    server_pid: int,
    bare: Bare,
    bare_pid: int,
) -> dict[str, float]:
    """Each run prints `lines` lines every `gap` s, from its own phase in [0, gap) so that the runs
    do not all print at the same instant, once all of them are streaming (`StartGate`). The
    same round is read directly, through the portal and through the bare relay; the CPU time
    the portal's (and the bare relay's) process spends while the lines stream, per line."""

    def command(gate: StartGate, i: int) -> str:
        return lines_command(lines, gap, gate.path, gap * i / runs)

    async def round_(name: str, start, viewer: bool, pid: int | None = None) -> tuple[list[float], float, float]:
        gate = StartGate()
        ready = asyncio.Semaphore(0)
        clocks = [LineClock(ready.release, viewer) for _ in range(runs)]
        tasks: list[asyncio.Task] = []
        try:
            async with phase(f"{name}: starting {runs} runs", timeouts.start, lambda: _state(clocks, tasks)):
                for i, clock in enumerate(clocks):
                    tasks.append(await start(command(gate, i), clock))

            async def all_ready() -> None:
                for _ in range(runs):
                    await ready.acquire()

            async with phase(
                f"{name}: waiting for {runs} runs and viewers", timeouts.ready, lambda: _state(clocks, tasks)
            ):
                await _unless_one_fails(all_ready(), tasks)
        finally:
            cpu = cpu_seconds(pid) if pid else 0.0
            began = time.monotonic()
            gate.open()
            spy = _profile(pid, lines * gap) if name == "portal" else None
        try:
            async with phase(
                f"{name}: streaming {runs} runs", timeouts.stream + lines * gap, lambda: _state(clocks, tasks)
            ):
                await asyncio.gather(*tasks)
        finally:
            gate.remove()
            for task in tasks:
                task.cancel()
            if spy is not None:
                spy.wait()
        cpu = (cpu_seconds(pid) - cpu) if pid else 0.0
        timeline = os.environ.get("RELAY_BENCH_TIMELINE")
        if timeline:  # each live line's (arrival, latency ms), to see whether the slow ones come together
            with open(f"{timeline}.{name}", "w") as out:
                for c in clocks:
                    out.writelines(f"{a:.6f} {v:.3f}\n" for a, v in zip(c.arrivals, c.latencies, strict=True))
        return [v for c in clocks for v in c.latencies], cpu, time.monotonic() - began

    async def start_direct(cmd: str, clock: LineClock) -> asyncio.Task:
        name = f"lat-{runs}-{time.time_ns()}"
        return asyncio.create_task(direct_run(emulator, cmd, name, clock.feed))

    async def start_relay(cmd: str, clock: LineClock) -> asyncio.Task:
        pk = await asyncio.to_thread(portal.start, cmd)
        return asyncio.create_task(portal.read(pk, lambda d, t, live: clock.feed(d, t, live), clock.replayed))

    async def start_bare(cmd: str, clock: LineClock) -> asyncio.Task:
        return asyncio.create_task(bare.read(cmd, lambda d, t, live: clock.feed(d, t, live), clock.replayed))

    direct, _, _ = await round_("direct", start_direct, viewer=False)
    relay, relay_cpu, relay_s = await round_("portal", start_relay, viewer=True, pid=server_pid)
    portal_round = {  # printed now: a later round that fails must not take these figures with it
        "relay_p50_ms": round(percentile(relay, 50), 2),
        "relay_p99_ms": round(percentile(relay, 99), 2),
        "direct_p99_ms": round(percentile(direct, 99), 2),
        "cpu_us_per_line": round(relay_cpu / max(len(relay), 1) * 1e6, 1),
        "load": round(os.getloadavg()[0], 2),
    }
    print(f"portal round ({runs} runs):", json.dumps(portal_round), flush=True)
    bare_lines, bare_cpu, _ = await round_("bare", start_bare, viewer=True, pid=bare_pid)
    return {
        "direct_p50_ms": round(percentile(direct, 50), 2),
        "direct_p99_ms": round(percentile(direct, 99), 2),
        "relay_p50_ms": round(percentile(relay, 50), 2),
        "relay_p99_ms": round(percentile(relay, 99), 2),
        "bare_p50_ms": round(percentile(bare_lines, 50), 2),
        "bare_p99_ms": round(percentile(bare_lines, 99), 2),
        "lines_direct": len(direct),
        "lines_relay": len(relay),
        "lines_bare": len(bare_lines),
        "ends_by_asking": ENDS_BY_ASKING[0],
        "relay_round_s": round(relay_s, 1),
        "cpu_us_per_line": round(relay_cpu / max(len(relay), 1) * 1e6, 1),
        "bare_cpu_us_per_line": round(bare_cpu / max(len(bare_lines), 1) * 1e6, 1),
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def throughput(portal: Portal, emulator, size: int) -> dict[str, float]:
    got = [0]

    def count(data: bytes, arrival: float, live: bool) -> None:
        got[0] += len(data)

    started = time.time()
    await direct_run(emulator, generator_command(size), f"tp-{time.time_ns()}", count)
    direct_s = time.time() - started
    assert got[0] == size, got[0]
    got[0] = 0
    started = time.time()
    pk = await asyncio.to_thread(portal.start, generator_command(size))
    ended = await portal.read(pk, count)
    relay_s = ended - started
    assert got[0] == size, got[0]
    return {"direct_s": round(direct_s, 2), "relay_s": round(relay_s, 2), "ratio": round(direct_s / relay_s, 3)}


async def memory(portal: Portal, pid: int, size: int) -> dict[str, float]:
    baseline = rss_mb(pid)
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    got = [0]
    pk = await asyncio.to_thread(portal.start, generator_command(size))
    await portal.read(pk, lambda d, t, live: got.__setitem__(0, got[0] + len(d)))
    done.set()
    sampler.join()
    assert got[0] == size
    return {"baseline_mb": round(baseline, 1), "peak_mb": round(peak[0], 1), "growth_mb": round(peak[0] - baseline, 1)}


async def measure(
    port: int, cookie: str, pid: int, agent: str, bare_port: int, bare_pid: int, args: argparse.Namespace
) -> dict[str, object]:
    portal = Portal(port, cookie)
    emulator = RemoteAgent(agent)
    pids = {"server_pid": pid, "bare": Bare(bare_port), "bare_pid": bare_pid}
    if args.only_1:
        return await latency(portal, emulator, 1, args.lines, 0.02, **pids)
    if args.only_100:
        hundred = await latency(portal, emulator, args.runs, args.lines_100, 0.05, **pids)
        hundred["load_after"] = round(os.getloadavg()[0], 2)
        return hundred
    one = await latency(portal, emulator, 1, args.lines, 0.02, **pids)
    print("1 run:", json.dumps(one), flush=True)
    load = os.getloadavg()[0]
    # 100 runs × 20 lines/s for at least 10 s: long enough for queues to build, were they to.
    hundred = await latency(portal, emulator, 100, args.lines_100, 0.05, **pids)
    hundred["load_before"] = round(load, 2)
    hundred["load_after"] = round(os.getloadavg()[0], 2)
    print("100 runs:", json.dumps(hundred), flush=True)
    tp = await throughput(portal, emulator, int(args.mb * 1_000_000))
    print("throughput:", json.dumps(tp), flush=True)
    mem = await memory(portal, pid, int(args.rss_mb * 1_000_000))
    print("memory:", json.dumps(mem), flush=True)
    return {
        "added_p50_ms_1": round(one["relay_p50_ms"] - one["direct_p50_ms"], 2),
        "added_p99_ms_1": round(one["relay_p99_ms"] - one["direct_p99_ms"], 2),
        "added_p99_ms_100": round(hundred["relay_p99_ms"] - hundred["direct_p99_ms"], 2),
        "bare_added_p99_ms_100": round(hundred["bare_p99_ms"] - hundred["direct_p99_ms"], 2),
        "round_s_100": hundred["relay_round_s"],
        "load_100": hundred["load_after"],
        "cpu_us_per_line": hundred["cpu_us_per_line"],
        "bare_cpu_us_per_line": hundred["bare_cpu_us_per_line"],
        "ends_by_asking": hundred["ends_by_asking"],
        "throughput_ratio": tp["ratio"],
        "rss_growth_mb_100mb": mem["growth_mb"],
    }


def main() -> None:
    if os.environ.get("RELAY_BENCH_TRACE"):
        import faulthandler

        faulthandler.dump_traceback_later(float(os.environ["RELAY_BENCH_TRACE"]), exit=True)
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", nargs=3, metavar=("PORT", "DB", "AGENT"))
    parser.add_argument("--agent", metavar="ADDRESS_FILE")
    parser.add_argument("--bare", nargs=2, metavar=("PORT", "AGENT"))
    parser.add_argument("--only-100", action="store_true", help="only the 100-run latency round")
    parser.add_argument(
        "--runs",
        type=int,
        default=100,
        help="runs in the --only-100 round (fewer: each line its own wake-up, as on an idle machine)",
    )
    parser.add_argument("--lines-100", type=int, default=220, help="lines per run in the 100-run round (0.05 s apart)")
    parser.add_argument("--only-1", action="store_true", help="only the one-run latency round")
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument(
        "--phase-timeout", type=float, default=120, help="seconds a phase may last (plus the lines' own time)"
    )
    parser.add_argument("--mb", type=float, default=50)
    parser.add_argument("--rss-mb", type=float, default=100)
    args = parser.parse_args()
    if args.agent:
        run_agent(args.agent)
        return
    if args.bare:
        run_bare(int(args.bare[0]), args.bare[1])
        return
    if args.serve:
        serve(int(args.serve[0]), args.serve[1], args.serve[2])
        return
    import socket

    def free() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    port, bare_port = free(), free()
    workdir = tempfile.mkdtemp(prefix="relay-bench-")
    os.environ["RELAY_AGENT_KEY"] = secrets.token_hex(16)
    agent, address = start_agent(workdir)
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), f"{workdir}/bench.sqlite3", address],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    bare = subprocess.Popen(
        [sys.executable, __file__, "--bare", str(bare_port), address], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None and bare.stdout is not None
        hello = json.loads(server.stdout.readline())
        bare_pid = json.loads(bare.stdout.readline())["pid"]
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        timeouts.start = timeouts.ready = timeouts.stream = args.phase_timeout
        try:
            result = asyncio.run(measure(port, hello["cookie"], hello["pid"], address, bare_port, bare_pid, args))
        except PhaseTimeout as exc:
            result = {"error": str(exc), "runs": run_statuses(f"{workdir}/bench.sqlite3")}
    finally:
        for process in (server, bare, agent):  # a draining server may outlast 10 s: never mask the error
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
