"""Throughput of SsmClient <- emulator against a plain WebSocket carrying the same bytes.

Not a test: ``python tests/benchmarks/ssm_throughput.py [--mb 50]`` from the repository root.
Both servers run in this process (one background asyncio loop), one after the other; each
client runs in its own subprocess, so its peak RSS (``ru_maxrss``) is its own. The data is
the same seeded base64 stream (no newlines, so the PTY passes it unchanged), produced by a
generator command that streams; the clients hash and discard what they receive. A second,
small SSM run shows whether the client's memory grows with the size of the output.

`ratio` compares with the plain WebSocket fed from a pipe (the issue's baseline). The emulator
reads a pseudo-terminal, as the real agent does, and a terminal delivers at most about 4 KB a
read; `ratio_same_source` therefore also compares with the plain WebSocket fed from a
pseudo-terminal, which isolates what the protocol itself costs.
The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from ecsportal.ssm.client import SsmClient
from ecsportal.ssm.emulator import start_in_thread

CHUNK = 1024
GENERATOR = (
    "import base64,random,sys\n"
    "n=int(sys.argv[1]); r=random.Random(7)\n"
    "block=base64.b64encode(r.randbytes(786432))\n"
    "out=sys.stdout.buffer\n"
    "while n>0:\n"
    "    piece=block[:n]; out.write(piece); n-=len(piece)\n"
    "out.flush()\n"
)


def generator_argv(size: int) -> list[str]:
    return [sys.executable, "-c", GENERATOR, str(size)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 2)


# -- the two clients (run as subprocesses) --------------------------------------------------


async def ssm_child(url: str, token: str) -> dict[str, object]:
    digest, count = hashlib.sha256(), 0
    started = time.perf_counter()
    async with SsmClient(url, token, idle_timeout=30) as session:
        await session.resize(200, 50)
        async for chunk in session:
            digest.update(chunk)
            count += len(chunk)
    seconds = time.perf_counter() - started
    end = session.end
    return {"bytes": count, "sha256": digest.hexdigest(), "seconds": seconds,
            "end": str(end.kind) if end else None, "peak_rss_mb": peak_rss_mb(), "cpu_s": cpu_seconds(),
            "retransmissions": session.core.retransmissions}  # fmt: skip


async def raw_child(url: str) -> dict[str, object]:
    digest, count = hashlib.sha256(), 0
    started = time.perf_counter()
    async with connect(url, compression=None, max_size=2**20) as ws:
        async for message in ws:
            digest.update(message)  # type: ignore[arg-type]
            count += len(message)
    seconds = time.perf_counter() - started
    return {"bytes": count, "sha256": digest.hexdigest(), "seconds": seconds,
            "peak_rss_mb": peak_rss_mb(), "cpu_s": cpu_seconds()}  # fmt: skip


# -- the plain WebSocket server -------------------------------------------------------------


async def _pty_chunks(size: int):
    """The generator's output read from a pseudo-terminal, as the emulator reads it."""
    master, slave = os.openpty()
    proc = await asyncio.create_subprocess_exec(
        *generator_argv(size), stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.DEVNULL
    )
    os.close(slave)
    os.set_blocking(master, False)
    loop = asyncio.get_running_loop()
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except BlockingIOError:
                ready = loop.create_future()
                loop.add_reader(master, ready.set_result, None)
                try:
                    await ready
                finally:
                    loop.remove_reader(master)
                continue
            except OSError:  # EIO: the writer closed the terminal
                break
            if not data:
                break
            yield data
    finally:
        os.close(master)
        await proc.wait()


async def _pipe_chunks(size: int):
    proc = await asyncio.create_subprocess_exec(*generator_argv(size), stdout=subprocess.PIPE)
    assert proc.stdout is not None
    while data := await proc.stdout.read(65536):
        yield data
    await proc.wait()


def raw_handler(size: int):
    """A plain WebSocket server sending the generator's bytes in CHUNK-byte messages: from a
    pipe at "/", or from a pseudo-terminal at "/pty" (the emulator's source, for the
    same-source ratio)."""

    async def handle(ws) -> None:
        source = _pty_chunks(size) if ws.request.path.startswith("/pty") else _pipe_chunks(size)
        carry = b""
        async for data in source:
            data = carry + data
            whole = len(data) - len(data) % CHUNK
            for start in range(0, whole, CHUNK):
                await ws.send(data[start : start + CHUNK])
            carry = data[whole:]
        if carry:
            await ws.send(carry)
        await ws.close()

    return handle


def run_child(args: list[str]) -> dict[str, object]:
    """Run one client; ``server_cpu_s`` is this process's CPU meanwhile (the server loop's,
    since the main thread only waits), so both ends' costs show up in the output."""
    before = cpu_seconds()
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["server_cpu_s"] = round(cpu_seconds() - before, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=50)
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        coro = ssm_child(*rest) if kind == "ssm" else raw_child(*rest)
        print(json.dumps(asyncio.run(coro)))
        return
    size = int(args.mb * 1_000_000)
    emulator = start_in_thread()
    try:
        raw_server = asyncio.run_coroutine_threadsafe(_start_raw(size), emulator.loop).result()
        raw_url = f"ws://127.0.0.1:{raw_server.sockets[0].getsockname()[1]}/"
        command = shlex.join(generator_argv(size))
        small_command = shlex.join(generator_argv(size // 10))
        small = run_child(["ssm", emulator.register_session(
            session_id="bench-small", token="t", command=small_command), "t"])  # fmt: skip
        ssm = run_child(["ssm", emulator.register_session(
            session_id="bench", token="t", command=command), "t"])  # fmt: skip
        raw = run_child(["raw", raw_url])
        raw_pty = run_child(["raw", raw_url + "pty"])
    finally:
        emulator.stop()
    assert ssm["bytes"] == raw["bytes"] == size, (ssm["bytes"], raw["bytes"])
    assert ssm["sha256"] == raw["sha256"] == raw_pty["sha256"], "a path changed the bytes"
    ssm_mb_s = size / 1e6 / float(ssm["seconds"])
    raw_mb_s = size / 1e6 / float(raw["seconds"])
    raw_pty_mb_s = size / 1e6 / float(raw_pty["seconds"])
    print(f"ssm: {ssm}\nraw: {raw}\nssm small ({size // 10} bytes): {small}")
    print(json.dumps({
        "ssm_mb_s": round(ssm_mb_s, 1),
        "raw_ws_mb_s": round(raw_mb_s, 1),
        "ratio": round(ssm_mb_s / raw_mb_s, 2),
        # The same plain WebSocket fed from a pseudo-terminal, as the emulator is: the cost of
        # the protocol alone, without the terminal's.
        "raw_ws_pty_mb_s": round(raw_pty_mb_s, 1),
        "ratio_same_source": round(ssm_mb_s / raw_pty_mb_s, 2),
        "client_peak_rss_mb": round(float(ssm["peak_rss_mb"]), 1),
        "client_peak_rss_mb_at_tenth_size": round(float(small["peak_rss_mb"]), 1),
        "raw_client_peak_rss_mb": round(float(raw["peak_rss_mb"]), 1),
        "emulator_retransmissions": emulator.retransmissions.get("bench"),
        "client_retransmissions": ssm["retransmissions"],
        "cpu_s": {"ssm_client": ssm["cpu_s"], "ssm_server": ssm["server_cpu_s"],
                  "raw_client": raw["cpu_s"], "raw_server": raw["server_cpu_s"]},
        "mb": size / 1e6,
    }))  # fmt: skip


async def _start_raw(size: int):
    return await serve(raw_handler(size), "127.0.0.1", 0, compression=None)


if __name__ == "__main__":
    main()
