"""Bulk output yields to keystrokes: while someone types into a shell on an event loop, runs
nobody types into wait for each echo, and the process keeps CPU to spare.

Every hop of a keystroke's echo (the socket's frame, the data channel's write, the echo read
back, the publisher, the viewer's send) waits for one turn of the event loop, and a turn runs
everything that is ready: with runs printing as fast as they can, that is their output, a
kilobyte message at a time (parse, acknowledge, join, publish). Twenty such floods made each
turn tens of milliseconds long and an echo seconds late. Coalescing bounds what a flood
*publishes*, not what it *reads*.

`LoopPacer` (one per loop) is a gate that every bulk run's `SsmClient` reader and runner ask
before each message and chunk (`must_wait`, then `released`). It shuts for two reasons:

- **A keystroke holds bulk output until its echo** (`keystroke`, `echoed`). A shell's runner
  has just written a key, so an echo is coming: from then until that shell's next output has
  been handed to its viewers (or `HOLD_MAX`), no bulk message is taken, so the echo's hops
  each find a short turn. The gate opens one turn after the echo, so the viewers' wake-ups run
  before the floods'. An echo that never comes (a password prompt) costs the floods `HOLD_MAX`
  per key, no more; keys in many shells without a pause between their echoes do not chain
  holds: past `HOLD_MAX` since the first, no new one is added until the gate has opened.
- **CPU to spare while someone types** (`CPU_TARGET`, `ACTIVE_FOR`). The echo's first hop
  (the key's frame reaching the runner) comes before any hold, and it waits for whatever the
  process is doing. A process that never rests is one the kernel runs last, and whose other
  threads (the database's) take the interpreter's lock whenever the loop makes a system call:
  each such wait was 2–5 ms, many per turn. So for `ACTIVE_FOR` after a keystroke, the gate
  looks at the process's CPU time once per `WINDOW`: above `CPU_TARGET` of a core over the
  last window, bulk output waits out the next one. The floods slow down; the shells answer.
  (The earlier pacer measured how late a short sleep woke and paused the floods after the
  fact: echo p99 60–200 ms under `interactive.py`'s twenty floods; a share of the loop's time
  instead of its CPU left the process as busy, 25–80 ms.)

A run waiting at the gate reads nothing more from its socket: its client's buffer and then TCP
hold the agent back. Its output is delayed, never dropped; the gate opens within `HOLD_MAX` or
`WINDOW`, far inside the agent's retransmission check (100 ms) and the data channel's ping
timeout. Runs go at full speed on a loop where nobody has typed for `ACTIVE_FOR`.

While a shell is open on the loop (`shell_opened`), a bulk run's client also reads ahead only
`PACED_READ_AHEAD` (`SsmClient.read_ahead`): with its usual megabyte, one reader's turn parsed
and acknowledged a thousand messages before it asked the gate again, and twenty floods held
twenty megabytes that the first keystroke after a pause had to wait behind (0.4–0.5 s).
"""

from __future__ import annotations

import asyncio
import time
import weakref

HOLD_MAX = 0.05  # the longest one keystroke holds bulk output back while its echo is awaited
ACTIVE_FOR = 60.0  # seconds after a keystroke during which the process keeps CPU to spare
CPU_TARGET = 0.3  # of one core: the process's CPU over a window past which bulk output waits
WINDOW = 0.01  # seconds: how often the CPU is looked at, and how long bulk output then waits
PACED_READ_AHEAD = 16 * 1024  # bytes a bulk run's client reads ahead while a shell is open on its loop


class LoopPacer:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.shells = 0  # interactive shells whose runner lives on this loop
        self._owed: dict[object, asyncio.TimerHandle] = {}  # shells whose echo is awaited: their expiry
        self._held_since = 0.0  # when the first of the holds now on began
        self._typed_until = float("-inf")  # the gate is active until then (loop time)
        self._window_start = 0.0
        self._window_end = 0.0
        self._cpu_at = 0.0  # the process's CPU time at the window's start
        self._spent = False  # the last window was over CPU_TARGET: shut until this one ends
        self._open = asyncio.Event()  # cleared while shut (an echo awaited, CPU spent)
        self._open.set()

    def shell_opened(self) -> None:
        self.shells += 1

    def shell_closed(self) -> None:
        self.shells = max(0, self.shells - 1)

    @property
    def active(self) -> bool:
        """Whether someone typed on this loop within `ACTIVE_FOR`."""
        return self.loop.time() < self._typed_until

    def must_wait(self) -> bool:
        """Asked by bulk output before each message: True when it must wait (`released`)."""
        if not self._open.is_set():
            return True
        now = self.loop.time()
        if now >= self._typed_until or now < self._window_end:
            return False
        cpu = time.process_time()
        busy = (cpu - self._cpu_at) / max(now - self._window_start, 1e-6)
        self._window_start, self._cpu_at = now, cpu
        self._window_end = now + WINDOW
        if busy <= CPU_TARGET:
            return False
        self._spent = True
        self._open.clear()
        self.loop.call_at(self._window_end, self._refilled)
        return True

    async def released(self) -> None:
        """Wait until the gate is open."""
        await self._open.wait()

    def keystroke(self, shell: object) -> None:
        """`shell` just wrote a key into its data channel: bulk output waits for the echo."""
        now = self.loop.time()
        if now >= self._typed_until:  # the first key in a while: the CPU is measured from here
            self._window_start, self._window_end, self._cpu_at = now, now + WINDOW, time.process_time()
        self._typed_until = now + ACTIVE_FOR
        if not self._owed:
            self._held_since = now
        elif now - self._held_since > HOLD_MAX:  # keys without a pause: the holds on end, none is added
            return
        expiry = self._owed.pop(shell, None)
        if expiry is not None:
            expiry.cancel()
        self._owed[shell] = self.loop.call_later(HOLD_MAX, self.echoed, shell)
        self._open.clear()

    def echoed(self, shell: object) -> None:
        """`shell`'s output after its key was handed to its viewers (or `HOLD_MAX` passed)."""
        expiry = self._owed.pop(shell, None)
        if expiry is None:
            return
        expiry.cancel()
        if not self._owed:  # one turn later: the viewers woken by the echo go before the floods
            self.loop.call_soon(self._release)

    def _refilled(self) -> None:
        self._spent = False
        self._release()

    def _release(self) -> None:
        if not self._owed and not self._spent:
            self._open.set()


_pacers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopPacer] = weakref.WeakKeyDictionary()


def pacer() -> LoopPacer:
    """The running loop's pacer."""
    loop = asyncio.get_running_loop()
    found = _pacers.get(loop)
    if found is None:
        found = _pacers[loop] = LoopPacer(loop)
    return found
