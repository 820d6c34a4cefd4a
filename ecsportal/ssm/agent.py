"""The agent side of a data-channel session, as a state machine with no I/O.

This is what the emulator speaks: it numbers its ``output_stream_data`` from 0 (Flags 1 on
the first, 0 after), acks every client message, delivers client input in order, resends its
own unacked output with the same RTO as the client, and optionally runs the handshake (with
or without a ``KMSEncryption`` action). The emulator's driver owns the socket, the
pseudo-terminal and fault injection; it reads frames from ``outbox``, where each one is
tagged so that faults can pick "the first transmission of output seq 7" or "the ack of
input seq 2".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple

from ecsportal.ssm import frames as f
from ecsportal.ssm.frames import Frame, FrameError, MessageIds, decode_frame, encode_raw, pad_type
from ecsportal.ssm.messages import ack_for, ack_sequence, channel_closed_frame
from ecsportal.ssm.streams import MAX_RESENDS, IncomingStream, OutgoingStream

AGENT_VERSION = "3.3.0.0-ecsportal-emulator"
_OUTPUT_TYPE = pad_type(f.OUTPUT_STREAM_DATA)


class Outgoing(NamedTuple):
    """One frame for the socket. ``kind`` is "output", "ack" or "control"."""

    kind: str
    sequence: int
    first: bool
    data: bytes


@dataclass(frozen=True, slots=True)
class InputData:
    data: bytes


@dataclass(frozen=True, slots=True)
class Resize:
    cols: int
    rows: int


@dataclass(frozen=True, slots=True)
class HandshakeDone:
    ok: bool
    error: str = ""


@dataclass(frozen=True, slots=True)
class TerminateRequested:
    pass


@dataclass(frozen=True, slots=True)
class GaveUp:
    """The client stopped acknowledging output for ``MAX_RESENDS`` retransmissions."""


AgentEvent = InputData | Resize | HandshakeDone | TerminateRequested | GaveUp


def utf8_cut(buffer: bytes | bytearray, limit: int) -> int:
    """Where to end a chunk of at most ``limit`` bytes without splitting a UTF-8 sequence.

    Looks back at most three bytes for a lead byte whose sequence would run past the cut;
    bytes that are not UTF-8 at all are cut at ``limit`` so binary output never stalls.
    Returns 0 only when the whole (short) buffer is the start of one incomplete sequence.
    """
    cut = min(limit, len(buffer))
    for back in range(1, min(3, cut) + 1):
        byte = buffer[cut - back]
        if byte < 0x80:
            return cut
        if byte >= 0xC0:
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            if byte >= 0xF8 or need <= back:
                return cut
            return cut - back
    return cut


def utf8_chunks(buffer: bytes, limit: int = f.MAX_CHUNK, *, final: bool = False) -> tuple[list[bytes], bytes]:
    """Split terminal output into chunks of at most ``limit`` bytes, as the agent does.

    Returns the chunks and the incomplete UTF-8 tail to carry into the next read (empty when
    ``final``, because at the end of the output there is nothing left to wait for).
    """
    chunks: list[bytes] = []
    start, size = 0, len(buffer)
    while start < size:
        piece = buffer[start : start + limit]
        cut = utf8_cut(piece, limit)
        if cut < len(piece) and start + len(piece) >= size:
            if not final:
                if cut:
                    chunks.append(piece[:cut])
                start += cut
                break
            cut = len(piece)
        chunks.append(piece[:cut] if cut < len(piece) else piece)
        start += cut
    return chunks, buffer[start:]


class AgentSession:
    """Reliable delivery and handshake for one emulated agent session."""

    def __init__(self, *, session_id: str, handshake: bool = False, kms: bool = False) -> None:
        self.session_id = session_id
        self.handshake = handshake or kms
        self.kms = kms
        self.ready = not self.handshake
        self.paused = False
        self.outbox: list[Outgoing] = []
        self.dropped = 0
        self._outgoing = OutgoingStream()
        self._incoming = IncomingStream()
        self._events: list[AgentEvent] = []
        self._ids = MessageIds()
        self._now = 0.0

    # -- sending ---------------------------------------------------------------------------

    def begin(self, now: float) -> None:
        """Start the session: in handshake mode, send the HandshakeRequest (seq 0)."""
        self._now = now
        if not self.handshake:
            return
        actions = [
            {
                "ActionType": "SessionType",
                "ActionParameters": {
                    "SessionType": "InteractiveCommands",
                    "Properties": None,
                },
            }
        ]
        if self.kms:
            actions.append(
                {
                    "ActionType": "KMSEncryption",
                    "ActionParameters": {"KMSKeyId": "alias/ecsportal-emulator"},
                }
            )
        request = {"AgentVersion": AGENT_VERSION, "RequestedClientActions": actions}
        self._send(f.PT_HANDSHAKE_REQUEST, json.dumps(request).encode())

    def send_output(self, chunk: bytes, now: float) -> None:
        """Send one output message (at most 1024 bytes; the driver chunks)."""
        self._now = now
        self._send(f.PT_OUTPUT, chunk)

    def _send(self, payload_type: int, payload: bytes) -> None:
        sequence = self._outgoing.take_sequence()
        flags = f.FLAG_FIRST if sequence == 0 else 0
        data = encode_raw(_OUTPUT_TYPE, sequence, flags, self._ids.next_wire(), payload_type, payload)
        self._outgoing.sent(sequence, data, self._now)
        self.outbox.append(Outgoing("output", sequence, True, data))

    def channel_closed(self, output: str = "") -> bytes:
        return channel_closed_frame(session_id=self.session_id, output=output)

    @property
    def unacked(self) -> int:
        return len(self._outgoing.unacked)

    @property
    def retransmissions(self) -> int:
        return self._outgoing.resends

    # -- receiving -------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[AgentEvent]:
        self._now = now
        try:
            frame = decode_frame(data, check_digest=False)  # the agent does not check
        except FrameError:
            self.dropped += 1
            return self._take_events()
        kind = frame.message_type
        if kind == f.INPUT_STREAM_DATA:
            self._on_stream(frame)
        elif kind == f.ACKNOWLEDGE:
            try:
                self._outgoing.acked(ack_sequence(frame.payload), now)
            except ValueError:
                self.dropped += 1
        else:
            self.dropped += 1
        return self._take_events()

    def _on_stream(self, frame: Frame) -> None:
        ack, ready = self._incoming.receive(frame.sequence_number, frame)
        if ack:
            self.outbox.append(Outgoing("ack", frame.sequence_number, True, ack_for(frame, self._ids)))
        for item in ready:
            self._deliver(item)  # type: ignore[arg-type]

    def _deliver(self, frame: Frame) -> None:
        payload_type = frame.payload_type
        if payload_type == f.PT_HANDSHAKE_RESPONSE and not self.ready:
            self._on_handshake_response(frame.payload)
        elif not self.ready:
            return  # before HandshakeComplete the agent acks input and discards it
        elif payload_type == f.PT_OUTPUT:
            self._events.append(InputData(frame.payload))
        elif payload_type == f.PT_SIZE:
            self._on_size(frame.payload)
        elif payload_type == f.PT_FLAG and frame.payload[-1:] == b"\x02":
            self._events.append(TerminateRequested())

    def _on_size(self, payload: bytes) -> None:
        try:
            body = json.loads(payload)
            cols, rows = int(body["cols"]), int(body["rows"])
        except (ValueError, KeyError, TypeError):
            self.dropped += 1
            return
        if 0 < cols < 65536 and 0 < rows < 65536:
            self._events.append(Resize(cols, rows))

    def _on_handshake_response(self, payload: bytes) -> None:
        try:
            body = json.loads(payload)
            statuses = [a.get("ActionStatus") for a in body["ProcessedClientActions"]]
            errors = [a.get("Error") for a in body["ProcessedClientActions"]]
        except (ValueError, KeyError, TypeError, AttributeError):
            self._events.append(HandshakeDone(False, "malformed handshake response"))
            return
        expected = 2 if self.kms else 1
        if len(statuses) != expected or any(s != 1 for s in statuses):
            text = "; ".join(e for e in errors if e) or "client actions failed"
            self._events.append(HandshakeDone(False, f"Handshake failed: {text}"))
            return
        self.ready = True
        complete = {"HandshakeTimeToComplete": 1_000_000, "CustomerMessage": ""}
        self._send(f.PT_HANDSHAKE_COMPLETE, json.dumps(complete).encode())
        self._events.append(HandshakeDone(True))

    # -- time ------------------------------------------------------------------------------

    def tick(self, now: float) -> list[AgentEvent]:
        """Resend the oldest overdue output message unless publication is paused."""
        self._now = now
        if not self.paused:
            pending = self._outgoing.due(now)
            if pending is not None:
                if pending.resends > MAX_RESENDS:
                    self._events.append(GaveUp())
                else:
                    sequence = next(iter(self._outgoing.unacked))
                    self.outbox.append(Outgoing("output", sequence, False, pending.data))
        return self._take_events()

    def take_outbox(self) -> list[Outgoing]:
        outbox, self.outbox = self.outbox, []
        return outbox

    def _take_events(self) -> list[AgentEvent]:
        events, self._events = self._events, []
        return events
