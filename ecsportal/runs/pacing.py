"""Bulk output yields to keystrokes: while a shell is open on an event loop, runs nobody types
into read their output more slowly whenever that loop is late.

Every hop of a keystroke's echo (the socket's frame, the data channel's write, the echo read
back, the publisher, the viewer's send) waits for one turn of the event loop, and a turn runs
everything that is ready: with runs printing as fast as they can, that is their output, a
kilobyte message at a time (parse, acknowledge, join, publish). Twenty such floods made each
turn tens of milliseconds long and an echo seconds late. Coalescing bounds what a flood
*publishes*, not what it *reads*.

`LoopPacer` (one per loop, only while at least one interactive shell lives on it) measures
how late a short sleep wakes (the loop's lag, every `PROBE_EVERY`). While the lag is above
`LAG_TARGET`, the pause a bulk runner takes after each chunk it hands to its writer grows
(doubling, up to `MAX_PAUSE`); once the loop is on time again it shrinks (halving, to none).
A paused runner's `SsmClient` fills its buffer and stops reading its socket, so TCP holds the
agent back: the output is delayed, never dropped, and the loop's turns stay short for the
shells. Runs go at full speed on a loop without shells, and whenever the loop keeps up.

While it pauses, a bulk runner also lowers its client's read-ahead to `PACED_READ_AHEAD`
(`SsmClient.read_ahead`). With the client's usual megabyte, each paused flood went on reading,
parsing and acking a thousand messages before TCP held it back, and, once the pause ended,
another half megabyte at once: twenty floods took the loop for up to a second at a time, and
an echo waited for all of it (`interactive.py`'s 50-shell round, p99 0.7–0.9 s).
"""

from __future__ import annotations

import asyncio
import weakref

PROBE_EVERY = 0.01  # seconds between two lag probes
LAG_TARGET = 0.004  # a probe later than this means the loop's turns are too long for an echo
FIRST_PAUSE = 0.005  # the first pause a late loop imposes on each bulk chunk
MAX_PAUSE = 0.25  # the longest (well within the data channel's keepalive ping timeout)
PACED_READ_AHEAD = 16 * 1024  # bytes a paused bulk run's client reads ahead (a few agent messages)


class LoopPacer:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.shells = 0
        self.pause = 0.0  # seconds a bulk runner waits after each chunk (0: none)
        self.lag = 0.0  # the last probe's lateness
        self._probe: asyncio.Task | None = None

    def shell_opened(self) -> None:
        self.shells += 1
        if self._probe is None or self._probe.done():
            self._probe = self.loop.create_task(self._watch(), name="runs-pacer")

    def shell_closed(self) -> None:
        self.shells = max(0, self.shells - 1)
        if self.shells == 0:
            self.pause = 0.0

    async def bulk_turn(self) -> None:
        """A run nobody types into took a chunk: wait out the current pause, if any."""
        if self.pause > 0:
            await asyncio.sleep(self.pause)

    def observe(self, lag: float) -> None:
        """One probe's lateness: the pause grows while the loop is late, shrinks once on time."""
        self.lag = lag
        if lag > LAG_TARGET:
            self.pause = min(MAX_PAUSE, max(FIRST_PAUSE, self.pause * 2))
        elif self.pause > 0:
            self.pause = 0.0 if self.pause <= FIRST_PAUSE else self.pause / 2

    async def _watch(self) -> None:
        loop = self.loop
        while self.shells > 0:
            asked = loop.time()
            await asyncio.sleep(PROBE_EVERY)
            self.observe(max(0.0, loop.time() - asked - PROBE_EVERY))
        self.pause = 0.0


_pacers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopPacer] = weakref.WeakKeyDictionary()


def pacer() -> LoopPacer:
    """The running loop's pacer."""
    loop = asyncio.get_running_loop()
    found = _pacers.get(loop)
    if found is None:
        found = _pacers[loop] = LoopPacer(loop)
    return found
