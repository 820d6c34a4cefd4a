"""What the portal adds to a keystroke's echo in an interactive shell, and what stalled viewers cost.

Not a test: ``python tests/benchmarks/interactive.py`` from the repository root.

A child process serves the portal with DEBUG off (daphne, moto, its own SQLite, in-process
runner; `_serve.py`), with the SSM agent emulator in a process of its own (relay.py's
`--agent`) for the shells, and another for the floods (in ECS each container has its own
agent). The floods' viewers read in a process of their own. This process measures, in one run:

- echo, 1 session: a byte typed to `/bin/sh` under the emulator's PTY and its echo back, (a)
  directly with `SsmClient` and (b) through the portal (`ws/sessions/<pk>/` input → the
  runner's inbox (directly: the runner is in process) → the data channel, and the echo back through the output path). "added"
  = portal percentile − direct percentile.
- echo, 50 sessions while 20 runs flood: 50 shells open, 20 runs printing as fast as they can
  (each read by a viewer), a byte typed into each shell in turn; direct echoes alternate with
  them. The floods' agent, its twenty commands and their viewers stand for other machines (the
  containers and the browsers): they run at `--flood-nice` (10), so that twenty busy loops of
  `python3` do not take the cores from the server as they would not in a deployment. With
  `--flood-nice 0` they compete as equals (the closing notes give both).
- RSS growth: 10 viewers that connect to one shell and never read, while it prints 100 MB;
  the server's VmRSS (sampled every 50 ms) peak minus before.

Shells and runs are started through a benchmark-only ASGI wrapper in the child (POST
/__bench/shell and /__bench/run). The last line of output is one JSON object with
`echo_added_p99_ms_1`, `echo_added_p99_ms_50_flood`, `rss_growth_mb_stalled_viewers`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks._serve import bench_app, boot_portal, portal_environment, run_daphne  # noqa: E402
from tests.benchmarks.relay import RemoteAgent, percentile, rss_mb, start_agent  # noqa: E402

ECHO_TIMEOUT = 60.0  # seconds a keystroke's echo may take before the round stops (and says what came)
FLOOD = "python3 -c \"import sys\nwhile True: sys.stdout.write('x'*1000+'\\n')\""


def serve(port: int, db: str, agent: str, flood_agent: str) -> None:
    portal_environment(db, ECSPORTAL_RUN_TIME_LIMIT_SECONDS="600")
    booted = boot_portal(agent, bulk_agent=flood_agent, is_bulk=lambda command: "while True" in command)
    from ecsportal.aws import ecs
    from ecsportal.runs.interactive import shell_open
    from ecsportal.runs.services import RunRefused, run_cancel, run_request

    staging, operator = booted["accounts"]["staging"], booted["operator"]
    config = staging.aws_config()
    tasks = ecs.describe_tasks(config, "eu-west-1", "staging", ecs.list_task_arns(config, "eu-west-1", "staging"))
    task = next(t.arn for t in tasks if t.task_definition.startswith("web:"))
    target = {"account_pk": staging.pk, "region": "eu-west-1", "cluster": "staging", "task": task, "container": "app"}

    def cancel(body: dict) -> int:
        try:
            return run_cancel(actor=operator, run_pk=int(body["command"])).pk
        except RunRefused:  # it ended already (its time limit, on a slow machine)
            return int(body["command"])

    app = bench_app(
        {
            "shell": lambda body: shell_open(actor=operator, **target).pk,
            "run": lambda body: run_request(actor=operator, command=body["command"], mode="raw", **target).pk,
            "cancel": cancel,
        }
    )
    print(json.dumps({"cookie": booted["cookie"], "pid": os.getpid()}), flush=True)
    # 60 s for a socket's handshake, not daphne's 5: a loaded machine must not turn a slow
    # accept into a failed round (what is measured is the echo, not the opening).
    run_daphne(app, port, websocket_handshake_timeout=60)


class Portal:
    def __init__(self, port: int, cookie: str) -> None:
        self.port, self.cookie = port, cookie

    def start(self, kind: str, command: str = "") -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/__bench/{kind}",
            data=json.dumps({"command": command}).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=120) as answer:
            return int(answer.read())

    def connect(self, path: str, **options):
        from websockets.asyncio.client import connect

        return connect(
            f"ws://127.0.0.1:{self.port}{path}",
            additional_headers={"Cookie": f"sessionid={self.cookie}", "Origin": "http://localhost"},
            max_size=2**24,
            compression=None,
            open_timeout=60,
            **options,
        )


class PortalShell:
    """One shell through the portal: type a byte, wait for its echo."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.seen = bytearray()
        self.log: list = []  # the last messages received (said when an echo does not come)

    async def ready(self) -> None:
        """Until the prompt is shown and this socket holds the keyboard."""
        holding = False
        while True:
            message = json.loads(await self.ws.recv())
            if message["type"] == "output":
                self.seen.extend(base64.b64decode(message["data"]))
            elif message["type"] == "session":
                holding = message["holder"] == message["you"]
            if holding and (self.seen.endswith(b"$ ") or self.seen.endswith(b"# ")):
                return

    async def echo(self, char: str) -> float:
        start = time.perf_counter()
        await self.ws.send(json.dumps({"type": "input", "data": char}))
        while True:
            message = json.loads(await self.ws.recv())
            self.log = [*self.log[-9:], message if message["type"] != "output" else base64.b64decode(message["data"])]
            if message["type"] == "output" and char.encode() in base64.b64decode(message["data"]):
                return (time.perf_counter() - start) * 1000

    async def erase(self) -> None:
        await self.ws.send(json.dumps({"type": "input", "data": "\x15"}))


class DirectShell:
    def __init__(self, session) -> None:
        self.session = session

    async def echo(self, char: str) -> float:
        start = time.perf_counter()
        await self.session.send_input(char.encode())
        async for chunk in self.session:
            if char.encode() in chunk:
                return (time.perf_counter() - start) * 1000
        raise RuntimeError("the direct shell ended")

    async def erase(self) -> None:
        await self.session.send_input(b"\x15")


async def open_direct(agent: RemoteAgent, name: str):
    from ecsportal.ssm.client import SsmClient

    url = await asyncio.to_thread(agent.register_session, session_id=name, token="t", command="/bin/sh")
    session = SsmClient(url, "t", idle_timeout=None)
    await session.open()
    await session.resize(120, 32)
    async for chunk in session:
        if b"$ " in chunk or b"# " in chunk:
            break
    return session


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50), 2), "p99": round(percentile(values, 99), 2), "n": len(values)}


async def echo_rounds(portal_shells: list, direct: DirectShell, samples: int) -> tuple[list[float], list[float]]:
    """`samples` echoes through the portal (one shell after another) and as many directly,
    alternating, so both see the same moment of the machine; each keystroke a letter, the
    line erased (Ctrl-U, which echoes nothing waited for) every 20 letters of a shell."""
    relayed: list[float] = []
    straight: list[float] = []
    typed: dict[int, int] = {}
    letters = "abcdefghijklmnopqrstuvwxyz"
    began = time.monotonic()
    for i in range(samples):
        if i and i % 20 == 0:
            print(
                f"  {i} samples in {time.monotonic() - began:.1f} s, last portal {relayed[-1]:.1f} ms,"
                f" direct {straight[-1]:.1f} ms",
                file=sys.stderr,
                flush=True,
            )
        for shell, out in ((portal_shells[i % len(portal_shells)], relayed), (direct, straight)):
            try:
                out.append(await asyncio.wait_for(shell.echo(letters[i % 26]), ECHO_TIMEOUT))
            except TimeoutError:
                raise RuntimeError(
                    f"sample {i}: no echo from {'the direct shell' if shell is direct else 'a portal shell'}"
                    f" in {ECHO_TIMEOUT:g} s; it received {getattr(shell, 'log', [])[-5:]}"
                ) from None
            typed[id(shell)] = typed.get(id(shell), 0) + 1
            if typed[id(shell)] % 20 == 0:
                await shell.erase()
    slow = [(i, round(v, 1)) for i, v in enumerate(relayed) if v > 30]
    if slow:  # which samples, and when: a few spikes or a steady lag
        print(f"  portal echoes over 30 ms (sample, ms): {slow}", file=sys.stderr, flush=True)
    return relayed, straight


async def drain(ws) -> None:
    """A viewer that reads (and acknowledges) everything, as the run page does."""
    unacked = 0
    try:
        async for text in ws:
            message = json.loads(text)
            if message["type"] == "output":
                unacked += len(message["data"]) * 3 // 4
                if unacked >= 256 * 1024:
                    unacked = 0
                    await ws.send(json.dumps({"type": "ack", "seq": message["seq"]}))
    except Exception:
        return


def run_viewers(port: int, cookie: str, pks: list[int]) -> None:
    """The floods' viewers, in a process of their own: reading 20 floods as fast as they come
    took the measuring process's CPU, which delayed the echoes it was timing."""
    portal = Portal(port, cookie)

    async def main() -> None:
        sockets = [await portal.connect(f"/ws/runs/{p}/").__aenter__() for p in pks]
        print("ready", flush=True)
        await asyncio.gather(*(drain(ws) for ws in sockets))

    asyncio.run(main())


class Profiler:
    """With INTERACTIVE_BENCH_PYSPY=<prefix>: py-spy samples the server during each measured
    phase into `<prefix>-<phase>.json` (speedscope, every thread, idle samples included: the
    samples in time order show what held the loop during a slow echo)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.prefix = pid, os.environ.get("INTERACTIVE_BENCH_PYSPY")
        self.spy: subprocess.Popen | None = None

    def start(self, phase: str) -> None:
        if not self.prefix:
            return
        spy = Path(sys.executable).with_name("py-spy")
        command = [str(spy), "record", "-p", str(self.pid), "-r", "200", "--nonblocking", "--idle", "-f", "speedscope"]
        self.spy = subprocess.Popen(
            [*command, "-o", f"{self.prefix}-{phase}.json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def stop(self) -> None:
        if self.spy is not None:
            self.spy.send_signal(2)  # SIGINT: py-spy writes what it sampled
            self.spy.wait(timeout=30)
            self.spy = None


def load() -> float:
    return round(os.getloadavg()[0], 2)


async def measure(port: int, cookie: str, pid: int, agent_address: str, args) -> dict:
    portal = Portal(port, cookie)
    agent = RemoteAgent(agent_address)
    profiler = Profiler(pid)
    result: dict = {}
    direct = DirectShell(await open_direct(agent, f"direct-{time.time_ns()}"))

    if "one" in args.phases:
        pk = await asyncio.to_thread(portal.start, "shell")
        async with portal.connect(f"/ws/sessions/{pk}/") as ws:
            shell = PortalShell(ws)
            await shell.ready()
            await echo_rounds([shell], direct, 10)  # warm-up
            before = load()
            profiler.start("one")
            relayed, straight = await echo_rounds([shell], direct, args.samples)
            profiler.stop()
        result["one"] = {"portal": summary(relayed), "direct": summary(straight), "load": [before, load()]}
        print("one:", json.dumps(result["one"]), flush=True)

    if "flood" in args.phases:
        started = time.monotonic()
        # The shells first, each at its prompt, then the floods: the round measures typing
        # while they flood, not opening 50 shells while they do.
        # Ten at a time: opening 50 one after another took minutes on a loaded machine.
        opening = asyncio.Semaphore(10)

        async def start(kind: str, command: str = "") -> int:
            async with opening:
                return await asyncio.to_thread(portal.start, kind, command)

        async def seated(pk: int) -> PortalShell:
            async with opening:
                shell = PortalShell(await portal.connect(f"/ws/sessions/{pk}/").__aenter__())
                await shell.ready()
                return shell

        shells_pk = await asyncio.gather(*(start("shell") for _ in range(args.sessions)))
        shells = list(await asyncio.gather(*(seated(p) for p in shells_pk)))
        sockets = [s.ws for s in shells]
        flood_pk = await asyncio.gather(*(start("run", FLOOD) for _ in range(args.floods)))
        viewers = subprocess.Popen(
            [sys.executable, __file__, "--viewers", str(port), cookie, ",".join(map(str, flood_pk))],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        os.setpriority(os.PRIO_PROCESS, viewers.pid, args.flood_nice)
        try:
            assert viewers.stdout is not None
            await asyncio.to_thread(viewers.stdout.readline)  # every viewer connected
            await asyncio.sleep(2)  # the floods are flowing
            before = load()
            profiler.start("flood")
            relayed, straight = await echo_rounds(shells, direct, args.samples)
            profiler.stop()
            result["fifty_flood"] = {"portal": summary(relayed), "direct": summary(straight), "load": [before, load()]}
            print("fifty_flood:", json.dumps(result["fifty_flood"]), flush=True)
        finally:
            viewers.terminate()
            viewers.wait(timeout=15)
        for p in flood_pk:
            await asyncio.to_thread(portal.start, "cancel", str(p))
        for s in sockets:  # Ctrl-U first: the letters typed since the last erase would prefix "exit"
            await s.send(json.dumps({"type": "input", "data": "\x15exit\r"}))
        for ws in sockets:
            await ws.close()
        result["fifty_flood"]["round_s"] = round(time.monotonic() - started, 1)
        await asyncio.sleep(3)  # the floods' cancel grace

    if "stalled" in args.phases:
        started = time.monotonic()
        pk = await asyncio.to_thread(portal.start, "shell")
        async with portal.connect(f"/ws/sessions/{pk}/") as ws:
            owner = PortalShell(ws)
            await owner.ready()
            stalled = [
                await portal.connect(f"/ws/sessions/{pk}/", max_queue=1).__aenter__() for _ in range(args.stalled)
            ]
            before = rss_mb(pid)
            peak = [before]
            size = int(args.rss_mb * 1024 * 1024)

            async def sample() -> None:
                while True:
                    peak[0] = max(peak[0], rss_mb(pid))
                    await asyncio.sleep(0.05)

            sampler = asyncio.create_task(sample())
            load_before = load()
            profiler.start("stalled")
            printing = time.monotonic()
            await ws.send(
                json.dumps(
                    {"type": "input", "data": f"head -c {size} /dev/zero | tr '\\0' x; echo; echo D$((1+1))NE\r"}
                )
            )
            got = [0]
            try:
                await asyncio.wait_for(read_until(ws, b"D2NE", got), args.rss_seconds)
            except TimeoutError:
                raise RuntimeError(
                    f"stalled viewers: {got[0] / 2**20:.1f} of {args.rss_mb:g} MB read in {args.rss_seconds:g} s,"
                    f" RSS peak {peak[0] - before:.1f} MB over {before:.1f}"
                ) from None
            printed_s = time.monotonic() - printing
            profiler.stop()
            sampler.cancel()
            for viewer in stalled:
                viewer.transport.abort()
            result["stalled"] = {
                "rss_before_mb": round(before, 1),
                "rss_peak_mb": round(peak[0], 1),
                "printed_mb": args.rss_mb,
                "print_s": round(printed_s, 1),
                "round_s": round(time.monotonic() - started, 1),
                "load": [load_before, load()],
            }
            print("stalled:", json.dumps(result["stalled"]), flush=True)
    await direct.session.close()
    return result


async def read_until(ws, needle: bytes, got: list[int] | None = None) -> None:
    """Read (and acknowledge, as the page does) until `needle` is in the output (bytes read in `got`)."""
    tail = b""
    unacked = 0
    async for text in ws:
        message = json.loads(text)
        if message["type"] != "output":
            continue
        data = base64.b64decode(message["data"])
        # The needle may arrive with more after it (the next prompt, 60 bytes and more): look in
        # the whole of what came, then keep a short tail for a needle split across chunks. Only
        # looking at the last 64 bytes missed it, and the 100 MB round waited for ever.
        seen, tail = tail + data, (tail + data)[-64:]
        unacked += len(data)
        if got is not None:
            got[0] += len(data)
        if unacked >= 256 * 1024:
            unacked = 0
            await ws.send(json.dumps({"type": "ack", "seq": message["seq"]}))
        if needle in seen:
            return


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", nargs=4, metavar=("PORT", "DB", "AGENT", "FLOOD_AGENT"))
    parser.add_argument("--viewers", nargs=3, metavar=("PORT", "COOKIE", "PKS"))
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--floods", type=int, default=20)
    parser.add_argument("--rss-mb", type=float, default=100)
    parser.add_argument("--rss-seconds", type=float, default=180)
    parser.add_argument("--stalled", type=int, default=10, help="viewers that never read, in the memory round")
    parser.add_argument("--phases", default="one,flood,stalled", help="which rounds, comma-separated")
    parser.add_argument(
        "--flood-nice",
        type=int,
        default=10,
        help="niceness of the floods' agent, their commands and their viewers (0: as the server)",
    )
    args = parser.parse_args()
    args.phases = set(args.phases.split(","))
    if args.serve:
        serve(int(args.serve[0]), args.serve[1], args.serve[2], args.serve[3])
        return
    if args.viewers:
        run_viewers(int(args.viewers[0]), args.viewers[1], [int(p) for p in args.viewers[2].split(",")])
        return
    import socket

    began = time.monotonic()
    load_before = load()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="interactive-bench-")
    os.environ["RELAY_AGENT_KEY"] = secrets.token_hex(16)
    agent, address = start_agent(workdir)
    os.mkdir(f"{workdir}/floods")
    flood_agent, flood_address = start_agent(f"{workdir}/floods")  # the floods' containers' agent
    os.setpriority(os.PRIO_PROCESS, flood_agent.pid, args.flood_nice)  # and the commands it starts
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), f"{workdir}/bench.sqlite3", address, flood_address],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        hello = json.loads(server.stdout.readline())
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        result = asyncio.run(measure(port, hello["cookie"], hello["pid"], address, args))
    finally:
        server.terminate()
        agent.terminate()
        flood_agent.terminate()
        for proc in (server, agent, flood_agent):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(json.dumps(result, indent=1))
    last: dict = {}
    if "one" in result:
        one = result["one"]
        last["echo_added_p50_ms_1"] = round(one["portal"]["p50"] - one["direct"]["p50"], 2)
        last["echo_added_p99_ms_1"] = round(one["portal"]["p99"] - one["direct"]["p99"], 2)
    if "fifty_flood" in result:
        flood = result["fifty_flood"]
        last["echo_added_p50_ms_50_flood"] = round(flood["portal"]["p50"] - flood["direct"]["p50"], 2)
        last["echo_added_p99_ms_50_flood"] = round(flood["portal"]["p99"] - flood["direct"]["p99"], 2)
    if "stalled" in result:
        stalled = result["stalled"]
        last["rss_growth_mb_stalled_viewers"] = round(stalled["rss_peak_mb"] - stalled["rss_before_mb"], 1)
    last.update({"total_s": round(time.monotonic() - began, 1), "load_before": load_before, "load_after": load()})
    print(json.dumps(last))


if __name__ == "__main__":
    main()
