"""Write many binary WebSocket messages with one socket write, awaiting or at once.

Every output message needs an ack, so the data channel sends thousands of tiny messages a
second each way; one ``send()`` per message costs a system call and an await each. This
uses websockets' documented ``send_context`` pattern ("write to the connection from user
code") to queue a batch in the protocol and write it to the transport at once. Any surprise
falls back to plain ``send()`` so correctness never depends on the shortcut.
"""

from __future__ import annotations

from collections.abc import Sequence, Sized

from websockets.asyncio.connection import Connection
from websockets.protocol import State

WRITE_NOW_LIMIT = 64 * 1024
"""Bytes already waiting in the transport past which `send_binary_now` leaves a batch to the
awaiting path (which waits for the socket to drain)."""


async def send_binary_batch(ws: Connection, messages: Sequence[bytes]) -> None:
    """Send each item as its own binary message, in order, with one transport write."""
    if len(messages) == 1 or not hasattr(ws, "send_context"):
        for message in messages:
            await ws.send(message)
        return
    async with ws.send_context():
        _queue_and_write(ws, messages)  # what it leaves, send_context's exit writes


def _queue_and_write(ws: Connection, messages: Sequence[bytes]) -> bool:
    """Frame `messages` in the protocol and write them with one transport write; False when
    the protocol also had an end-of-stream marker queued: then it is all left queued for
    websockets' own writer (`send_data`), which knows what the marker means."""
    protocol = ws.protocol
    for message in messages:
        protocol.send_binary(message)
    pending = protocol.data_to_send()
    if all(pending):
        ws.transport.write(b"".join(pending))
        return True
    protocol.writes[:0] = pending
    return False


def can_send_now(ws: Connection) -> bool:
    """Whether `send_binary_now` would write: the connection is open and its transport keeps up."""
    transport = ws.transport
    return (
        ws.protocol.state is State.OPEN
        and not transport.is_closing()
        and transport.get_write_buffer_size() <= WRITE_NOW_LIMIT
    )


def send_binary_now(ws: Connection, messages: Sequence[bytes]) -> None:
    """Send each item as its own binary message with one transport write, without awaiting.

    For a caller that checked `can_send_now` in the same step (no await between): what
    `send_context` does on entry (the state) and on exit (the write), without its wait for the
    socket to drain, which the check stands in for. The data channel's acks go this way from
    the task that read the message, so an ack never waits for another task's turn of the loop.
    """
    if not _queue_and_write(ws, messages):  # a marker (not expected while OPEN)
        ws.send_data()


def frames_queue(ws: Connection) -> Sized | None:
    """The frames websockets has parsed and not yet handed out (their count tells a reader
    whether its next `recv` returns at once), or None where this version keeps them
    elsewhere: callers then act as if none were queued."""
    queue = getattr(getattr(getattr(ws, "recv_messages", None), "frames", None), "queue", None)
    return queue if hasattr(queue, "__len__") else None
