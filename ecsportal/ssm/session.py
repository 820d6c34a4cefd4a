"""The client side of a data-channel session, as a state machine with no I/O.

Feed it what the socket delivered (``receive_data``), the passage of time (``tick``) and what
the user does (``send_input``, ``resize``, ``close``); it returns events and queues bytes for
the socket (``data_to_send``). Time is always passed in as ``now`` (monotonic seconds), so
tests can drive retransmission without sleeping.

Events: ``OutputReceived`` (terminal bytes, in order, exactly once), ``SessionStarted``,
``SessionEnded`` (kind normal / error / channel_lost / timed_out / closed, with a message)
and ``ProtocolWarning``. Frames that fail validation are dropped without an ack and counted
in ``dropped`` (a ``Counter`` keyed by reason); nothing the peer sends raises out of here.

Input (size and stdin) is held back until the session type is known: the first agent stream
message is either terminal output (no handshake) or a HandshakeRequest, and in the second
case size and stdin may only follow HandshakeComplete (spec section 4). A driver can call
``open_input`` after a grace period so that a command that prints nothing before reading
its input cannot deadlock the session.
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from ecsportal.ssm import frames as f
from ecsportal.ssm.frames import Frame, FrameError, MessageIds, decode_frame, encode_raw, pad_type
from ecsportal.ssm.messages import (
    MalformedPayload,
    ack_for,
    ack_sequence,
    size_payload,
)
from ecsportal.ssm.streams import MAX_RESENDS, IncomingStream, OutgoingStream

CLIENT_VERSION = "1.2.0.0-ecsportal"
"""Reported in the token frame and handshake response (the Go plugin sends its own)."""
ACCEPTED_SESSION_TYPES = frozenset({"InteractiveCommands", "Standard_Stream", "NonInteractiveCommands"})
_INPUT_TYPE = pad_type(f.INPUT_STREAM_DATA)
KMS_UNSUPPORTED = (
    "the session requires KMS encryption of the data channel (the cluster's ECS Exec "
    "configuration names a KMS key), which this client does not support"
)


class EndKind(StrEnum):
    NORMAL = "normal"
    """``channel_closed`` with an empty ``Output``: the command exited."""
    ERROR = "error"
    """``channel_closed`` with an error text, a refused token, or a protocol failure."""
    CHANNEL_LOST = "channel_lost"
    """The connection ended without ``channel_closed``; the session cannot be resumed."""
    TIMED_OUT = "timed_out"
    """The channel could not be opened in time, or went silent for too long."""
    CLOSED = "closed"
    """This client closed the session before it ended."""


@dataclass(frozen=True, slots=True)
class OutputReceived:
    data: bytes


@dataclass(frozen=True, slots=True)
class SessionStarted:
    handshake: bool
    customer_message: str = ""


@dataclass(frozen=True, slots=True)
class SessionEnded:
    kind: EndKind
    message: str = ""


@dataclass(frozen=True, slots=True)
class ProtocolWarning:
    message: str


Event = OutputReceived | SessionStarted | SessionEnded | ProtocolWarning


class ClientSession:
    """Sequence numbers, acks, ordering, retransmission and handshake of one client."""

    def __init__(self, *, client_version: str = CLIENT_VERSION) -> None:
        self.client_version = client_version
        self.dropped: Counter[str] = Counter()
        self.end: SessionEnded | None = None
        self.started = False
        self.handshake = False
        self.paused = False
        self._outgoing = OutgoingStream()
        self._incoming = IncomingStream()
        self._ids = MessageIds()
        self._outbox: list[bytes] = []
        self._events: list[Event] = []
        self._input_open = False
        self._held: list[tuple[int, bytes]] = []
        self._size: tuple[int, int] | None = None
        self._now = 0.0

    # -- what the socket delivered -------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Handle one binary WebSocket message."""
        self._now = now
        if self.end is None:
            try:
                frame = decode_frame(data)
            except FrameError as error:
                self._drop(error.reason)
            else:
                self._dispatch(frame, now)
        return self._take_events()

    def _dispatch(self, frame: Frame, now: float) -> None:
        kind = frame.message_type
        if kind == f.OUTPUT_STREAM_DATA:
            self._on_stream(frame)
        elif kind == f.ACKNOWLEDGE:
            self._on_ack(frame, now)
        elif kind == f.CHANNEL_CLOSED:
            self._on_channel_closed(frame)
        elif kind == f.PAUSE_PUBLICATION:
            self.paused = True
        elif kind == f.START_PUBLICATION:
            self.paused = False
            self._flush_held()
        else:
            self._drop(f"unknown message type {kind[:32]!r}")

    def _on_stream(self, frame: Frame) -> None:
        ack, ready = self._incoming.receive(frame.sequence_number, frame)
        if ack:
            self._outbox.append(ack_for(frame, self._ids))
        else:
            self._drop("incoming buffer full")
        for item in ready:
            self._deliver(item)  # type: ignore[arg-type]

    def _deliver(self, frame: Frame) -> None:
        if self.end is not None:
            return
        payload_type = frame.payload_type
        if payload_type in (f.PT_OUTPUT, f.PT_STDERR):
            if not self.started:
                self._start(handshake=False)
            if frame.payload:
                self._events.append(OutputReceived(frame.payload))
        elif payload_type == f.PT_HANDSHAKE_REQUEST:
            self._on_handshake_request(frame.payload)
        elif payload_type == f.PT_HANDSHAKE_COMPLETE:
            self._on_handshake_complete(frame.payload)
        else:
            self._warn(f"ignored output message with payload type {payload_type}")

    def _on_ack(self, frame: Frame, now: float) -> None:
        try:
            sequence = ack_sequence(frame.payload)
        except ValueError:
            self._drop("malformed ack")
            return
        self._outgoing.acked(sequence, now)

    def _on_channel_closed(self, frame: Frame) -> None:
        try:
            body = json.loads(frame.payload)
            output = str(body.get("Output") or "") if isinstance(body, dict) else ""
        except ValueError:
            output = "channel_closed with an unreadable payload"
        missing = len(self._incoming.buffer)
        if missing:
            self._warn(f"channel closed with {missing} output messages out of order")
        if output:
            self._finish(EndKind.ERROR, output)
        else:
            self._finish(EndKind.NORMAL, "")

    # -- handshake -----------------------------------------------------------------------

    def _on_handshake_request(self, payload: bytes) -> None:
        try:
            request = json.loads(payload)
            actions = request.get("RequestedClientActions") or []
            if not isinstance(actions, list):
                raise MalformedPayload("RequestedClientActions is not a list")
        except (ValueError, AttributeError) as error:
            self._finish(EndKind.ERROR, f"malformed handshake request: {error}")
            return
        self.handshake = True
        if self._outgoing.next_sequence != 0:
            self._warn("handshake request arrived after input was sent")
        processed, errors = [], []
        for action in actions:
            status, error = self._judge_action(action)
            name = action.get("ActionType") if isinstance(action, dict) else None
            processed.append(
                {
                    "ActionType": name,
                    "ActionStatus": status,
                    "ActionResult": None,
                    "Error": error,
                }
            )
            if error:
                errors.append(error)
        response = {
            "ClientVersion": self.client_version,
            "ProcessedClientActions": processed,
            "Errors": errors or None,
        }
        self._send_stream(f.PT_HANDSHAKE_RESPONSE, json.dumps(response).encode())
        if errors:
            message = KMS_UNSUPPORTED if KMS_UNSUPPORTED in errors else errors[0]
            self._finish(EndKind.ERROR, message)

    def _judge_action(self, action: object) -> tuple[int, str]:
        """Status 1 (success) or 3 (unsupported) and an error text for one action."""
        if not isinstance(action, dict):
            return 3, "malformed client action"
        name = action.get("ActionType")
        if name == "SessionType":
            params = action.get("ActionParameters") or {}
            session_type = params.get("SessionType") if isinstance(params, dict) else None
            if session_type in ACCEPTED_SESSION_TYPES:
                return 1, ""
            return 3, f"session type {session_type!r} is not supported by this client"
        if name == "KMSEncryption":
            return 3, KMS_UNSUPPORTED
        return 3, f"client action {name!r} is not supported by this client"

    def _on_handshake_complete(self, payload: bytes) -> None:
        try:
            body = json.loads(payload)
            message = str(body.get("CustomerMessage") or "")
        except (ValueError, AttributeError):
            message = ""
        opened_early = self._input_open
        self._start(handshake=True, customer_message=message)
        if opened_early and self._size is not None:
            # Input sent before the handshake was discarded by the agent: say the size again.
            self._send_stream(f.PT_SIZE, size_payload(*self._size))

    def _start(self, *, handshake: bool, customer_message: str = "") -> None:
        self.started = True
        self._events.append(SessionStarted(handshake, customer_message))
        self._open_input()

    # -- what the user does ---------------------------------------------------------------

    def send_input(self, data: bytes, now: float) -> None:
        """Queue stdin bytes, split into messages of at most 1024 bytes."""
        self._now = now
        for start in range(0, len(data), f.MAX_CHUNK):
            self._input(f.PT_OUTPUT, bytes(data[start : start + f.MAX_CHUNK]))

    def resize(self, cols: int, rows: int, now: float) -> None:
        """Queue a terminal size message; the agent sizes the pseudo-terminal with it."""
        self._now = now
        if not (0 < cols < 65536 and 0 < rows < 65536):
            raise ValueError(f"terminal size out of range: {cols}x{rows}")
        self._size = (cols, rows)
        self._input(f.PT_SIZE, size_payload(cols, rows))

    def terminate(self, now: float) -> None:
        """Ask the agent to stop the command (Flag TerminateSession), best effort."""
        self._now = now
        if self.end is None:
            self._send_stream(f.PT_FLAG, struct.pack(">I", f.FLAG_TERMINATE_SESSION))

    def open_input(self, now: float) -> None:
        """Stop holding input back although the agent has said nothing yet (driver grace)."""
        self._now = now
        if not self._input_open and self.end is None:
            self._open_input()

    def _input(self, payload_type: int, payload: bytes) -> None:
        if self.end is not None:
            return
        if self._input_open and not self.paused:
            self._send_stream(payload_type, payload)
        else:
            self._held.append((payload_type, payload))

    def _open_input(self) -> None:
        self._input_open = True
        self._flush_held()

    def _flush_held(self) -> None:
        if not self._input_open or self.paused:
            return
        held, self._held = self._held, []
        for payload_type, payload in held:
            self._send_stream(payload_type, payload)

    def _send_stream(self, payload_type: int, payload: bytes) -> None:
        sequence = self._outgoing.take_sequence()
        data = encode_raw(_INPUT_TYPE, sequence, 0, self._ids.next_wire(), payload_type, payload)
        self._outgoing.sent(sequence, data, self._now)
        self._outbox.append(data)

    # -- time and the connection -----------------------------------------------------------

    def tick(self, now: float) -> list[Event]:
        """Resend the oldest unacked message if it is overdue; call every 100 ms."""
        self._now = now
        if self.end is None and not self.paused:
            pending = self._outgoing.due(now)
            if pending is not None:
                if pending.resends > MAX_RESENDS:
                    self._finish(
                        EndKind.CHANNEL_LOST,
                        "the agent stopped acknowledging input messages",
                    )
                else:
                    self._outbox.append(pending.data)
        return self._take_events()

    def connection_lost(self, detail: str = "") -> list[Event]:
        """The socket closed; without ``channel_closed`` first this is a lost channel."""
        if self.end is None:
            message = "the data channel closed without channel_closed"
            self._finish(EndKind.CHANNEL_LOST, f"{message} ({detail})" if detail else message)
        return self._take_events()

    def fail(self, kind: EndKind, message: str) -> list[Event]:
        """End the session for a reason only the driver can see (timeouts, refusals)."""
        if self.end is None:
            self._finish(kind, message)
        return self._take_events()

    def data_to_send(self) -> list[bytes]:
        """Frames to write to the socket, in order; the list is handed over, not copied."""
        outbox, self._outbox = self._outbox, []
        return outbox

    @property
    def unacked(self) -> int:
        return len(self._outgoing.unacked)

    @property
    def retransmissions(self) -> int:
        return self._outgoing.resends

    @property
    def duplicates(self) -> int:
        """Stream messages received again (retransmitted or duplicated) and re-acked."""
        return self._incoming.duplicates

    # -- helpers ----------------------------------------------------------------------------

    def _finish(self, kind: EndKind, message: str) -> None:
        self.end = SessionEnded(kind, message)
        self._events.append(self.end)

    def _drop(self, reason: str) -> None:
        self.dropped[reason] += 1
        self._events.append(ProtocolWarning(f"dropped a frame: {reason}"))

    def _warn(self, message: str) -> None:
        self._events.append(ProtocolWarning(message))

    def _take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events
