"""A bare ASGI application served by the daphne command in `test_eagerwrite.py`: it installs
`ecsportal.eagerwrite` as `ecsportal.asgi` does, and sends numbered frames over a WebSocket."""

from __future__ import annotations

import asyncio
import hashlib

from ecsportal import eagerwrite

eagerwrite.install()

SIZES = [10, 1, 70_000, 1_000_000, 3, 200, 900_000, 5] * 12  # daphne sends at most 1 MiB a message


def frame(i: int) -> bytes:
    """Frame `i`: its number, then bytes that differ per frame (so a frame out of order or torn shows)."""
    seed = hashlib.sha256(str(i).encode()).digest()
    size = SIZES[i]
    return i.to_bytes(4, "big") + (seed * (size // len(seed) + 1))[:size]


async def application(scope: dict, receive, send) -> None:
    if scope["type"] == "lifespan":
        return
    assert scope["type"] == "websocket"
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    from twisted.internet import tcp

    patched = getattr(tcp.Server.write, "_ecsportal_eager", False)
    await send({"type": "websocket.send", "text": f"eager={patched}"})
    for i in range(len(SIZES)):
        await send({"type": "websocket.send", "bytes": frame(i)})
        await asyncio.sleep(0.002)  # frames keep coming while the reader drains the earlier ones
    # No close from here: daphne drops a connection whose close the client has not answered
    # within a second, unread bytes and all. The test closes once it has every frame.
    while (await receive())["type"] != "websocket.disconnect":
        pass
