"""Write many binary WebSocket messages with one socket write.

Every output message needs an ack, so the data channel sends thousands of tiny messages a
second each way; one ``send()`` per message costs a system call and an await each. This
uses websockets' documented ``send_context`` pattern ("write to the connection from user
code") to queue a batch in the protocol and write it to the transport at once. Any surprise
falls back to plain ``send()`` so correctness never depends on the shortcut.
"""

from __future__ import annotations

from collections.abc import Sequence

from websockets.asyncio.connection import Connection


async def send_binary_batch(ws: Connection, messages: Sequence[bytes]) -> None:
    """Send each item as its own binary message, in order, with one transport write."""
    if len(messages) == 1 or not hasattr(ws, "send_context"):
        for message in messages:
            await ws.send(message)
        return
    async with ws.send_context():
        protocol = ws.protocol
        for message in messages:
            protocol.send_binary(message)
        pending = protocol.data_to_send()
        if all(pending):
            ws.transport.write(b"".join(pending))
        else:  # an end-of-stream marker: leave it all to websockets' own writer
            protocol.writes[:0] = pending
