"""Payloads and whole frames that both ends build: acks, sizes, handshakes, channel_closed.

JSON shapes follow the Go structs named in docs/ssm-data-channel.md. Acks are built
with string formatting rather than ``json.dumps`` because one is sent for every output
message and every field is either a fixed name, a hex UUID or an integer.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

from ecsportal.ssm.frames import (
    ACKNOWLEDGE,
    CHANNEL_CLOSED,
    FLAG_ACK,
    PT_NONE,
    Frame,
    MessageIds,
    encode_frame,
    encode_raw,
    new_message_id,
    now_ms,
    pad_type,
    uuid_text,
)

_ACK_TEMPLATE = (
    '{"AcknowledgedMessageType":"%s","AcknowledgedMessageId":"%s",'
    '"AcknowledgedMessageSequenceNumber":%d,"IsSequentialMessage":true}'
)


def ack_for(frame: Frame, ids: MessageIds | None = None) -> bytes:
    """The encoded ack of a received stream message: seq 0, flags 3, payload type 0.

    Senders pass their ``MessageIds`` so each ack has an id unique in the session.
    """
    payload = (_ACK_TEMPLATE % (frame.message_type, uuid_text(frame.message_id), frame.sequence_number)).encode("ascii")
    wire_id = (ids or MessageIds()).next_wire()
    return encode_raw(_ACK_TYPE, 0, FLAG_ACK, wire_id, PT_NONE, payload)


_ACK_TYPE = pad_type(ACKNOWLEDGE)


@dataclass(frozen=True, slots=True)
class Ack:
    message_type: str
    message_id: str
    sequence_number: int


class MalformedPayload(ValueError):
    """A payload from the peer that is not what the protocol says; dropped, not fatal."""


def parse_ack(payload: bytes) -> Ack:
    """Read an ack payload; raises ``ValueError`` on anything malformed."""
    body = json.loads(payload)
    if not isinstance(body, dict):
        raise MalformedPayload("ack is not an object")
    sequence = body.get("AcknowledgedMessageSequenceNumber")
    if not isinstance(sequence, int) or isinstance(sequence, bool):
        raise MalformedPayload("ack without a sequence number")
    return Ack(
        str(body.get("AcknowledgedMessageType", "")),
        str(body.get("AcknowledgedMessageId", "")),
        sequence,
    )


_ACK_SEQUENCE = re.compile(
    rb'^\{"AcknowledgedMessageType":"[a-z_]+","AcknowledgedMessageId":'
    rb'"[0-9a-f-]{36}","AcknowledgedMessageSequenceNumber":(\d{1,18}),'
)


def ack_sequence(payload: bytes) -> int:
    """The acked sequence number; a fast path for acks shaped exactly as Go writes them."""
    match = _ACK_SEQUENCE.match(payload)
    if match is not None:
        return int(match.group(1))
    return parse_ack(payload).sequence_number


def size_payload(cols: int, rows: int) -> bytes:
    return json.dumps({"cols": cols, "rows": rows}, separators=(",", ":")).encode()


def channel_closed_frame(*, session_id: str, output: str = "") -> bytes:
    """The service's end-of-session message; ``output`` empty means a normal end."""
    message_id = new_message_id()
    created = now_ms()
    body = {
        "MessageId": uuid_text(message_id),
        "CreatedDate": str(created),
        "DestinationId": session_id,
        "SessionId": session_id,
        "MessageType": CHANNEL_CLOSED,
        "SchemaVersion": 1,
        "Output": output,
    }
    return encode_frame(
        Frame(
            CHANNEL_CLOSED,
            0,
            json.dumps(body).encode(),
            message_id=message_id,
            created_ms=created,
        )
    )


def token_message(token: str, *, client_id: str | None, client_version: str | None) -> str:
    """The first (text) frame, ``OpenDataChannelInput``. Holds the secret: never log it."""
    body = {
        "MessageSchemaVersion": "1.0",
        "RequestId": str(uuid.uuid4()),
        "TokenValue": token,
    }
    if client_id is not None:
        body["ClientId"] = client_id
    if client_version is not None:
        body["ClientVersion"] = client_version
    return json.dumps(body)
