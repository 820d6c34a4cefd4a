"""Reliable delivery over the data channel, shared by the client and the agent emulator.

Both ends number their own stream messages from 0, ack every one they receive, deliver in
order, and resend their oldest unacked message when it is older than a TCP-style
retransmission timeout (spec section 5). Keeping this in one place means the emulator and the
client cannot drift apart. No I/O and no clock: callers pass ``now`` in seconds.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

RETRANSMIT_INTERVAL = 0.1
"""How often a sender looks at its oldest unacked message (seconds)."""
MAX_RESENDS = 3000
"""The Go client gives up after this many resends of one message (about 5 minutes)."""
INCOMING_BUFFER_CAPACITY = 10000
"""Out-of-order messages kept at most; beyond this they are dropped unacked and resent."""


class RetransmissionTimeout:
    """The RTO estimator of the spec: SRTT/RTTVAR as in TCP, clamped to [.., 1 s]."""

    __slots__ = ("rto", "rttvar", "srtt")

    def __init__(self) -> None:
        self.srtt = 0.1
        self.rttvar = 0.0
        self.rto = 0.2

    def observe(self, rtt: float) -> None:
        """Fold one measured round trip into the estimate."""
        self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
        self.srtt = 0.875 * self.srtt + 0.125 * rtt
        self.rto = min(1.0, self.srtt + max(0.01, 4 * self.rttvar))


@dataclass(slots=True)
class Pending:
    """A sent stream message kept until the peer acks it."""

    data: bytes
    sent_at: float
    resends: int = 0


class OutgoingStream:
    """Sequence numbers, unacked messages and retransmission for one sending direction."""

    __slots__ = ("next_sequence", "resends", "timer", "unacked")

    def __init__(self) -> None:
        self.next_sequence = 0
        self.unacked: OrderedDict[int, Pending] = OrderedDict()
        self.timer = RetransmissionTimeout()
        self.resends = 0

    def take_sequence(self) -> int:
        sequence = self.next_sequence
        self.next_sequence += 1
        return sequence

    def sent(self, sequence: int, data: bytes, now: float) -> None:
        self.unacked[sequence] = Pending(data, now)

    def acked(self, sequence: int, now: float) -> bool:
        """Forget an acked message; ``False`` for an unknown or repeated ack."""
        pending = self.unacked.pop(sequence, None)
        if pending is None:
            return False
        self.timer.observe(max(0.0, now - pending.sent_at))
        return True

    def due(self, now: float) -> Pending | None:
        """The oldest unacked message if it has waited longer than the RTO.

        Only the oldest one is considered per tick, as in both Go implementations; the caller
        sends ``pending.data`` again and checks ``pending.resends`` against ``MAX_RESENDS``.
        """
        if not self.unacked:
            return None
        pending = next(iter(self.unacked.values()))
        if now - pending.sent_at <= self.timer.rto:
            return None
        pending.sent_at = now
        pending.resends += 1
        self.resends += 1
        return pending


class IncomingStream:
    """Expected sequence number and out-of-order buffer for one receiving direction."""

    __slots__ = ("buffer", "capacity", "duplicates", "expected")

    def __init__(self, capacity: int = INCOMING_BUFFER_CAPACITY) -> None:
        self.expected = 0
        self.buffer: dict[int, object] = {}
        self.capacity = capacity
        self.duplicates = 0

    def receive(self, sequence: int, item: object) -> tuple[bool, list[object]]:
        """Take one stream message: return (ack it?, items now deliverable in order)."""
        if sequence == self.expected:
            ready = [item]
            self.expected += 1
            buffer = self.buffer
            while buffer:
                nxt = buffer.pop(self.expected, None)
                if nxt is None:
                    break
                ready.append(nxt)
                self.expected += 1
            return True, ready
        if sequence < self.expected:
            self.duplicates += 1
            return True, []
        if sequence in self.buffer:
            self.duplicates += 1
            return True, []
        if len(self.buffer) >= self.capacity:
            return False, []
        self.buffer[sequence] = item
        return True, []
