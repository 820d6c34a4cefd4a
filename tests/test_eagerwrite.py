"""`ecsportal.eagerwrite` under the real daphne command: frames written at once to an idle
connection, and, when the reader falls behind (the kernel takes part of a frame, then none),
the rest buffered by Twisted, so that every byte arrives, in order, once. The reader stalls,
then drains slowly while frames keep coming: a write sent past bytes Twisted still holds
(space freed before the reactor's own write) would put frames out of order, and does when the
idle check is taken out."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from websockets.asyncio.client import connect

from tests.deployment import ROOT, free_port
from tests.eager_app import SIZES, frame


def _serve(port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "tests.eager_app:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def _read(port: int, stall: float) -> tuple[str, list[bytes]]:
    for _ in range(100):  # until daphne listens
        try:
            ws = await connect(f"ws://127.0.0.1:{port}/", max_size=None, compression=None, max_queue=1)
            break
        except OSError:
            await asyncio.sleep(0.1)
    else:
        raise AssertionError("daphne did not listen")
    async with ws:
        hello = await ws.recv()
        # Not reading for a while: the socket buffers fill, daphne's sends are cut short and the
        # rest waits in Twisted; then everything is read.
        await asyncio.sleep(stall)
        frames = []
        for _ in SIZES:  # then read, a little at a time: space frees while Twisted still holds bytes
            frames.append(await ws.recv())
            await asyncio.sleep(0.005)
    return hello, frames


def test_every_frame_arrives_whole_and_in_order_with_a_stalled_reader():
    port = free_port()
    server = _serve(port)
    try:
        hello, frames = asyncio.run(asyncio.wait_for(_read(port, stall=1.0), 60))
    finally:
        server.terminate()
        _, err = server.communicate(timeout=10)
    assert hello == "eager=True", err.decode()[-2000:]
    assert len(frames) == len(SIZES)
    for i, got in enumerate(frames):
        assert got == frame(i), f"frame {i} differs: {len(got)} bytes, first {got[:4]!r}"
