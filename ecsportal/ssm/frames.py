"""Binary frames of the Session Manager data channel: encode and decode, nothing else.

The layout (docs/ssm-data-channel.md, section 2) is fixed-width and big-endian, so
one precompiled ``struct.Struct`` reads and writes the whole 120-byte header; that keeps the
per-frame cost low enough for multi-megabyte outputs. Decoding validates exactly what AWS's
Go client validates and reports every failure as ``FrameError``, so callers can drop and
count bad frames instead of crashing on hostile or corrupted bytes.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import struct
import time
from dataclasses import dataclass, field

HEADER_LENGTH = 116
"""The value of the HeaderLength field: the offset of PayloadLength, not of the payload."""
PAYLOAD_OFFSET = HEADER_LENGTH + 4
MESSAGE_TYPE_SIZE = 32
MAX_CHUNK = 1024
"""Largest payload of one output or stdin message, as the agent and Go client send."""

_HEADER = struct.Struct(">I32sIQqQ16s32sII")
assert _HEADER.size == PAYLOAD_OFFSET

# Message types.
OUTPUT_STREAM_DATA = "output_stream_data"
INPUT_STREAM_DATA = "input_stream_data"
ACKNOWLEDGE = "acknowledge"
CHANNEL_CLOSED = "channel_closed"
START_PUBLICATION = "start_publication"
PAUSE_PUBLICATION = "pause_publication"
STREAM_TYPES = frozenset({OUTPUT_STREAM_DATA, INPUT_STREAM_DATA})
_UNCHECKED_TYPES = frozenset({START_PUBLICATION, PAUSE_PUBLICATION})

# Payload types (same numbering in the client and the agent).
PT_NONE = 0
PT_OUTPUT = 1
PT_ERROR = 2
PT_SIZE = 3
PT_PARAMETER = 4
PT_HANDSHAKE_REQUEST = 5
PT_HANDSHAKE_RESPONSE = 6
PT_HANDSHAKE_COMPLETE = 7
PT_ENC_CHALLENGE_REQUEST = 8
PT_ENC_CHALLENGE_RESPONSE = 9
PT_FLAG = 10
PT_STDERR = 11
PT_EXIT_CODE = 12

# Flags: the agent marks its first stream message with 1; acks carry 3.
FLAG_FIRST = 1
FLAG_ACK = 3

# Values of a PT_FLAG payload (4-byte big-endian uint32).
FLAG_DISCONNECT_TO_PORT = 1
FLAG_TERMINATE_SESSION = 2
FLAG_CONNECT_TO_PORT_ERROR = 3


class FrameError(ValueError):
    """A frame that must be dropped without an ack; ``reason`` is a short stable label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def now_ms() -> int:
    """Wall-clock epoch milliseconds, the unit of CreatedDate."""
    return time.time_ns() // 1_000_000


def new_message_id() -> bytes:
    """A random RFC 4122 version-4 UUID in its usual byte order (not the wire order)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return bytes(raw)


def uuid_to_wire(uuid_bytes: bytes) -> bytes:
    """Swap the two 8-byte halves, as the Go code does when it writes a MessageId."""
    return uuid_bytes[8:] + uuid_bytes[:8]


def uuid_from_wire(wire: bytes) -> bytes:
    """Undo the half swap; the operation is its own inverse."""
    return wire[8:] + wire[:8]


def uuid_text(uuid_bytes: bytes) -> str:
    """The hyphenated form that acks use to name a message (what ``str(UUID)`` gives)."""
    h = uuid_bytes.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


class MessageIds:
    """Unique, version-4-shaped MessageIds for one sender, made cheaply.

    Every frame needs an id, and ``os.urandom`` per frame is a system call on the
    per-message path. Here the first half is random once per sender (version nibble set)
    and the second half is the variant bits over a 62-bit counter, so no two ids from one
    session can collide (a fresh random id per frame only makes that unlikely) and making
    one costs an int-to-bytes. ``next_wire`` returns the id already in wire order
    (halves swapped, spec section 2), which is the only form the encoder needs.
    """

    __slots__ = ("_count", "_first_half")

    _VARIANT = 0b10 << 62

    def __init__(self) -> None:
        self._first_half = new_message_id()[:8]
        self._count = itertools.count()

    def next_wire(self) -> bytes:
        return (self._VARIANT | next(self._count)).to_bytes(8, "big") + self._first_half


def encode_raw(
    message_type_padded: bytes,
    sequence: int,
    flags: int,
    wire_id: bytes,
    payload_type: int,
    payload: bytes,
) -> bytes:
    """``encode_frame`` without the ``Frame`` object, for the per-message hot path.

    Takes the type already padded (``pad_type``) and the id already in wire order
    (``MessageIds.next_wire``), the two conversions that would otherwise run per frame.
    """
    return (
        _HEADER.pack(
            HEADER_LENGTH,
            message_type_padded,
            1,
            time.time_ns() // 1_000_000,
            sequence,
            flags,
            wire_id,
            hashlib.sha256(payload).digest(),
            payload_type,
            len(payload),
        )
        + payload
    )


def pad_type(message_type: str) -> bytes:
    """The MessageType field as written: ASCII, right-padded with spaces to 32 bytes."""
    return message_type.encode("ascii").ljust(MESSAGE_TYPE_SIZE, b" ")


@dataclass(slots=True)
class Frame:
    """One data-channel message. ``message_id`` holds the UUID in RFC 4122 byte order."""

    message_type: str
    sequence_number: int = 0
    payload: bytes = b""
    payload_type: int = PT_NONE
    flags: int = 0
    message_id: bytes = field(default_factory=new_message_id)
    created_ms: int = field(default_factory=now_ms)
    schema_version: int = 1

    @property
    def message_id_text(self) -> str:
        return uuid_text(self.message_id)


def encode_frame(frame: Frame) -> bytes:
    """Serialise a frame; the digest is always computed here, never trusted from a caller."""
    payload = frame.payload
    header = _HEADER.pack(
        HEADER_LENGTH,
        frame.message_type.encode("ascii").ljust(MESSAGE_TYPE_SIZE, b" "),
        frame.schema_version,
        frame.created_ms,
        frame.sequence_number,
        frame.flags,
        frame.message_id[8:] + frame.message_id[:8],
        hashlib.sha256(payload).digest(),
        frame.payload_type,
        len(payload),
    )
    return header + payload


def _read_type(raw_type: bytes) -> str:
    """The MessageType field as text: spaces and NULs stripped at both ends."""
    try:
        message_type = raw_type.strip(b" \x00").decode("ascii")
    except UnicodeDecodeError:
        raise FrameError("bad message type") from None
    if not message_type:
        raise FrameError("empty message type")
    return message_type


_KNOWN_TYPES = {pad_type(name): name for name in (*STREAM_TYPES, ACKNOWLEDGE, CHANNEL_CLOSED, *_UNCHECKED_TYPES)}
"""The space-padded fields we and the Go code write, so decoding skips strip and decode."""


def decode_frame(data: bytes, *, check_digest: bool = True) -> Frame:
    """Parse and validate a frame the way the Go client does, or raise ``FrameError``.

    HeaderLength must be 116: the fields are read at fixed offsets, so any other value means
    the sender and we disagree about the layout. The payload is everything after offset 120,
    whatever PayloadLength says, as in the Go parser. ``check_digest=False`` is for the
    agent side, which does not check digests either.
    """
    if len(data) < PAYLOAD_OFFSET:
        raise FrameError("truncated", f"{len(data)} bytes")
    (
        header_length,
        raw_type,
        schema_version,
        created_ms,
        sequence_number,
        flags,
        wire_id,
        digest,
        payload_type,
        payload_length,
    ) = _HEADER.unpack_from(data)
    if header_length != HEADER_LENGTH:
        raise FrameError("bad header length", str(header_length))
    message_type = _KNOWN_TYPES.get(raw_type) or _read_type(raw_type)
    payload = bytes(data[PAYLOAD_OFFSET:])
    if message_type not in _UNCHECKED_TYPES:
        if created_ms == 0:
            raise FrameError("no created date")
        if check_digest and (payload_length > 0 or payload) and hashlib.sha256(payload).digest() != digest:
            raise FrameError("bad digest")
    return Frame(
        message_type=message_type,
        sequence_number=sequence_number,
        payload=payload,
        payload_type=payload_type,
        flags=flags,
        message_id=wire_id[8:] + wire_id[:8],
        created_ms=created_ms,
        schema_version=schema_version,
    )
