"""What the portal adds to a keystroke's echo in an interactive shell, and what stalled viewers cost.

Not a test: ``python tests/benchmarks/interactive.py`` from the repository root.

A child process serves the portal with DEBUG off (daphne, moto, its own SQLite, in-process
runner), as `relay.py` does, with the SSM agent emulator in a process of its own (relay.py's
`--agent`). This process measures, in one run:

- echo, 1 session: a byte typed to `/bin/sh` under the emulator's PTY and its echo back, (a)
  directly with `SsmClient` and (b) through the portal (`ws/sessions/<pk>/` input → channel
  layer → the runner → the data channel, and the echo back through the output path). "added"
  = portal percentile − direct percentile.
- echo, 50 sessions while 20 runs flood: 50 shells open, 20 runs printing as fast as they can
  (each read by a viewer), a byte typed into each shell in turn; direct measured beside them.
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

from tests.benchmarks.relay import RemoteAgent, percentile, rss_mb, start_agent  # noqa: E402

FLOOD = "python3 -c \"import sys\nwhile True: sys.stdout.write('x'*1000+'\\n')\""


def serve(port: int, db: str, agent: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "ecsportal.settings",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_COOKIES": "false",
            "ECSPORTAL_SECRET_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "DATABASE_URL": f"sqlite:///{db}",
            # Every run here is one operator's: the per-user slot limit (50) would queue the rest.
            "ECSPORTAL_RUNS_MAX_ACTIVE_PER_USER": "0",
            "REDIS_URL": "",
            "ECSPORTAL_LOCAL_EXEC": "true",
            "ECSPORTAL_STOPPED_COLLECT_INTERVAL": "0",
            "ECSPORTAL_APPROVAL_SWEEP_SECONDS": "0",
            "ECSPORTAL_RUN_SWEEP_SECONDS": "0",
            "ECSPORTAL_RUN_TASK_CHECK_SECONDS": "30",
            "ECSPORTAL_INVENTORY_CACHE_SECONDS": "60",
            "ECSPORTAL_SOCKETS_PER_USER": "0",
            "ECSPORTAL_RUN_OUTPUT_BUDGET_BYTES": str(2**30),
            "ECSPORTAL_RUN_TIME_LIMIT_SECONDS": "600",
        }
    )
    import logging

    import django

    django.setup()
    logging.disable(logging.INFO)
    from asgiref.sync import sync_to_async
    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from ecsportal.aws import ecs, local, sessions
    from ecsportal.demo import localaws
    from ecsportal.demo.seed import seed_portal

    call_command("migrate", interactive=False, verbosity=0)
    aws = localaws.LocalAws()
    sessions.configure(endpoint_url=aws.endpoint_url, local_exec=True, connect_timeout=2, read_timeout=10)
    remote = RemoteAgent(agent)
    local.set_session_registrar(
        lambda request: remote.register_session(
            session_id=request.session_id, token=request.token, command=request.command, container=request.container
        )
    )
    localaws.seed_iam(aws.endpoint_url)
    localaws.seed_aws(aws.endpoint_url)
    accounts = seed_portal(password="bench")
    staging = accounts["staging"]
    operator = get_user_model().objects.get(username="operator")
    client = Client()
    client.force_login(operator)
    cookie = client.cookies["sessionid"].value
    config = staging.aws_config()
    tasks = ecs.describe_tasks(config, "eu-west-1", "staging", ecs.list_task_arns(config, "eu-west-1", "staging"))
    task = next(t.arn for t in tasks if t.task_definition.startswith("web:"))

    from ecsportal.asgi import application
    from ecsportal.runs.interactive import shell_open
    from ecsportal.runs.services import run_cancel, run_request

    target = {"account_pk": staging.pk, "region": "eu-west-1", "cluster": "staging", "task": task, "container": "app"}

    def start(kind: str, command: str) -> int:
        if kind == "shell":
            return shell_open(actor=operator, **target).pk
        if kind == "cancel":
            try:
                return run_cancel(actor=operator, run_pk=int(command)).pk
            except ValueError:  # RunRefused: it ended already (its time limit, on a slow machine)
                return int(command)
        return run_request(actor=operator, command=command, mode="raw", **target).pk

    async def app(scope: dict, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] in ("/__bench/shell", "/__bench/run", "/__bench/cancel"):
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            kind = scope["path"].rsplit("/", 1)[1]
            pk = await sync_to_async(start)(kind, json.loads(body or b"{}").get("command", ""))
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": str(pk).encode()})
            return
        await application(scope, receive, send)

    print(json.dumps({"cookie": cookie, "pid": os.getpid()}), flush=True)
    Server(
        application=app,
        endpoints=build_endpoint_description_strings(host="127.0.0.1", port=port),
        signal_handlers=True,
        verbosity=0,
    ).run()


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
            if message["type"] == "output" and char.encode() in base64.b64decode(message["data"]):
                return (time.perf_counter() - start) * 1000


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


async def echo_rounds(shells: list, samples: int) -> list[float]:
    """`samples` echoes, one shell after another; each keystroke a letter, erased after (^H)."""
    out: list[float] = []
    letters = "abcdefghijklmnopqrstuvwxyz"
    for i in range(samples):
        shell = shells[i % len(shells)]
        out.append(await shell.echo(letters[i % 26]))
        if i % 20 == 19:  # keep the line short: erase what was typed (Ctrl-U), echoing nothing we wait for
            if isinstance(shell, PortalShell):
                await shell.ws.send(json.dumps({"type": "input", "data": "\x15"}))
            else:
                await shell.session.send_input(b"\x15")
    return out


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


async def measure(port: int, cookie: str, pid: int, agent_address: str, args) -> dict:
    portal = Portal(port, cookie)
    agent = RemoteAgent(agent_address)
    result: dict = {}

    # -- one session -------------------------------------------------------------------------
    direct = DirectShell(await open_direct(agent, f"direct-{time.time_ns()}"))
    pk = await asyncio.to_thread(portal.start, "shell")
    async with portal.connect(f"/ws/sessions/{pk}/") as ws:
        shell = PortalShell(ws)
        await shell.ready()
        await echo_rounds([shell], 10)  # warm-up
        await echo_rounds([direct], 10)
        relayed = await echo_rounds([shell], args.samples)
        straight = await echo_rounds([direct], args.samples)
    result["one"] = {"portal": summary(relayed), "direct": summary(straight)}

    # -- 50 sessions while 20 runs flood -------------------------------------------------------
    shells_pk = [await asyncio.to_thread(portal.start, "shell") for _ in range(args.sessions)]
    flood_pk = [await asyncio.to_thread(portal.start, "run", FLOOD) for _ in range(args.floods)]
    sockets = [await portal.connect(f"/ws/sessions/{p}/").__aenter__() for p in shells_pk]
    viewers = [await portal.connect(f"/ws/runs/{p}/").__aenter__() for p in flood_pk]
    readers = [asyncio.create_task(drain(v)) for v in viewers]
    shells = [PortalShell(s) for s in sockets]
    for s in shells:
        await s.ready()
    await asyncio.sleep(2)  # the floods are flowing
    relayed = await echo_rounds(shells, args.samples)
    straight = await echo_rounds([direct], args.samples)
    result["fifty_flood"] = {"portal": summary(relayed), "direct": summary(straight)}
    print(json.dumps(result), flush=True)  # kept, should a later round fail
    for s in sockets:
        await s.send(json.dumps({"type": "input", "data": "exit\r"}))
    for task in readers:
        task.cancel()
    for ws in sockets + viewers:
        await ws.close()
    for p in flood_pk:
        await asyncio.to_thread(portal.start, "cancel", str(p))
    await asyncio.sleep(3)  # the floods' cancel grace

    # -- stalled viewers -----------------------------------------------------------------------
    pk = await asyncio.to_thread(portal.start, "shell")
    async with portal.connect(f"/ws/sessions/{pk}/") as ws:
        owner = PortalShell(ws)
        await owner.ready()
        stalled = [await portal.connect(f"/ws/sessions/{pk}/", max_queue=1).__aenter__() for _ in range(10)]
        before = rss_mb(pid)
        peak = [before]
        size = int(args.rss_mb * 1024 * 1024)

        async def sample() -> None:
            while True:
                peak[0] = max(peak[0], rss_mb(pid))
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        await ws.send(
            json.dumps({"type": "input", "data": f"head -c {size} /dev/zero | tr '\\0' x; echo; echo D$((1+1))NE\r"})
        )
        await asyncio.wait_for(read_until(ws, b"D2NE"), args.rss_seconds)
        sampler.cancel()
        for viewer in stalled:
            viewer.transport.abort()
        result["stalled"] = {"rss_before_mb": round(before, 1), "rss_peak_mb": round(peak[0], 1)}
    return result


async def read_until(ws, needle: bytes) -> None:
    """Read (and acknowledge, as the page does) until `needle` is in the output."""
    tail = b""
    unacked = 0
    async for text in ws:
        message = json.loads(text)
        if message["type"] != "output":
            continue
        data = base64.b64decode(message["data"])
        tail = (tail + data)[-64:]
        unacked += len(data)
        if unacked >= 256 * 1024:
            unacked = 0
            await ws.send(json.dumps({"type": "ack", "seq": message["seq"]}))
        if needle in tail:
            return


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", nargs=3, metavar=("PORT", "DB", "AGENT"))
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--floods", type=int, default=20)
    parser.add_argument("--rss-mb", type=float, default=100)
    parser.add_argument("--rss-seconds", type=float, default=120)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1], args.serve[2])
        return
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="interactive-bench-")
    os.environ["RELAY_AGENT_KEY"] = secrets.token_hex(16)
    agent, address = start_agent(workdir)
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), f"{workdir}/bench.sqlite3", address],
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
        for proc in (server, agent):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(json.dumps(result, indent=1))
    one, flood, stalled = result["one"], result["fifty_flood"], result["stalled"]
    with open("/proc/loadavg") as f:
        load = float(f.read().split()[0])
    print(
        json.dumps(
            {
                "echo_added_p50_ms_1": round(one["portal"]["p50"] - one["direct"]["p50"], 2),
                "echo_added_p99_ms_1": round(one["portal"]["p99"] - one["direct"]["p99"], 2),
                "echo_added_p50_ms_50_flood": round(flood["portal"]["p50"] - flood["direct"]["p50"], 2),
                "echo_added_p99_ms_50_flood": round(flood["portal"]["p99"] - flood["direct"]["p99"], 2),
                "rss_growth_mb_stalled_viewers": round(stalled["rss_peak_mb"] - stalled["rss_before_mb"], 1),
                "load": load,
            }
        )
    )


if __name__ == "__main__":
    main()
