"""Under daphne: a write to an idle TCP connection goes to the socket at once.

Twisted buffers every `transport.write()` and sends it on the reactor's next turn: it asks the
event loop to watch the socket for writability (an `epoll_ctl`), the loop wakes for it, the
bytes are sent, and the watch is removed (another `epoll_ctl`). For a WebSocket frame of one
output line, which is most of what the portal sends, that is two system calls, a loop
iteration and four Python calls more than the send itself: in `relay.py`'s 100-run round,
about 7 % of the server's CPU, on the one thread every viewer's output goes through.
asyncio's own transports do the other thing: when nothing is queued they try the send first
and buffer only what the kernel did not take.

`install()` gives Twisted's TCP server connections that behaviour. A write goes straight to
`writeSomeData` (Twisted's own non-blocking send) only when the connection is plainly idle:
connected, not closing, no TLS layer in Twisted, nothing buffered. Whatever the kernel did not
take, and any error, takes Twisted's ordinary path (buffered; the reactor's write finds the
error and loses the connection as before), so order and error handling are Twisted's.
Idempotent; a no-op outside daphne (runsworker, tests, other servers).
"""

from __future__ import annotations

import sys
from typing import Any


def install() -> None:
    if "daphne.server" not in sys.modules:
        return
    from twisted.internet import tcp

    server = tcp.Server
    if getattr(server.write, "_ecsportal_eager", False):
        return
    buffered_write = server.write

    def write(self: Any, data: bytes) -> None:
        if (
            data
            and type(data) is bytes
            and self.connected
            and not self.disconnecting
            and not self._writeDisconnected
            and not self.TLS
            and not self._tempDataBuffer
            and len(self.dataBuffer) == self.offset
        ):
            sent = self.writeSomeData(data)
            if type(sent) is int and sent > 0:
                if sent == len(data):
                    return
                data = data[sent:]
        buffered_write(self, data)

    write._ecsportal_eager = True  # type: ignore[attr-defined]
    server.write = write
