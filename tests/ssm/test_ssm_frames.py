"""The frame codec against vectors written by hand from the spec, and against garbage."""

from __future__ import annotations

import hashlib
import json
import struct
import time
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecsportal.ssm.frames import Frame, FrameError, MessageIds, decode_frame, encode_frame
from ecsportal.ssm.messages import ack_for, channel_closed_frame

from .conftest import SPEC_UUID_TEXT, SPEC_UUID_WIRE, wire


def test_it_reads_the_spec_uuid_example_with_swapped_halves():
    frame = decode_frame(wire("output_stream_data", 0, b"x"))
    assert frame.message_id_text == SPEC_UUID_TEXT


def test_it_writes_the_spec_uuid_example_with_swapped_halves():
    data = encode_frame(Frame("output_stream_data", 0, b"x", message_id=uuid.UUID(SPEC_UUID_TEXT).bytes))
    assert data[64:80] == SPEC_UUID_WIRE


def test_it_encodes_a_size_message_byte_for_byte():
    payload = b'{"cols":80,"rows":24}'
    expected = (
        struct.pack(">I", 116)
        + b"input_stream_data" + b" " * 15
        + struct.pack(">I", 1)
        + struct.pack(">Q", 1_700_000_000_123)
        + struct.pack(">q", 4)
        + struct.pack(">Q", 0)
        + SPEC_UUID_WIRE
        + hashlib.sha256(payload).digest()
        + struct.pack(">I", 3)
        + struct.pack(">I", 21)
        + payload
    )  # fmt: skip
    frame = Frame(
        "input_stream_data",
        4,
        payload,
        payload_type=3,
        message_id=uuid.UUID(SPEC_UUID_TEXT).bytes,
        created_ms=1_700_000_000_123,
    )
    assert encode_frame(frame) == expected
    assert len(expected) == 120 + 21


def test_it_encodes_an_ack_byte_for_byte():
    payload = (
        b'{"AcknowledgedMessageType":"output_stream_data",'
        b'"AcknowledgedMessageId":"8c5e6611-74c2-421b-9462-f7ab89a95c49",'
        b'"AcknowledgedMessageSequenceNumber":7,"IsSequentialMessage":true}'
    )
    expected = (
        bytes.fromhex("00000074")
        + b"acknowledge".ljust(32)
        + bytes.fromhex("00000001")
        + bytes.fromhex("0000018bcfe5687b")  # 1_700_000_000_123 ms
        + bytes(8)
        + bytes.fromhex("0000000000000003")
        + SPEC_UUID_WIRE
        + hashlib.sha256(payload).digest()
        + bytes(4)
        + struct.pack(">I", len(payload))
        + payload
    )
    frame = Frame(
        "acknowledge",
        0,
        payload,
        flags=3,
        message_id=uuid.UUID(SPEC_UUID_TEXT).bytes,
        created_ms=1_700_000_000_123,
    )
    assert encode_frame(frame) == expected


def test_it_decodes_a_hand_written_channel_closed():
    body = {
        "MessageId": SPEC_UUID_TEXT,
        "CreatedDate": "1700000000123",
        "DestinationId": "s-1",
        "SessionId": "s-1",
        "MessageType": "channel_closed",
        "SchemaVersion": 1,
        "Output": "boom",
    }
    frame = decode_frame(wire("channel_closed", 0, json.dumps(body).encode(), payload_type=0))
    assert frame.message_type == "channel_closed"
    assert json.loads(frame.payload)["Output"] == "boom"


def test_the_emulators_channel_closed_has_the_spec_fields():
    data = channel_closed_frame(session_id="s-1", output="")
    assert struct.unpack(">I", data[0:4]) == (116,)
    assert data[4:36] == b"channel_closed".ljust(32)
    assert data[112:116] == bytes(4)
    body = json.loads(data[120:])
    assert set(body) == {
        "MessageId",
        "CreatedDate",
        "DestinationId",
        "SessionId",
        "MessageType",
        "SchemaVersion",
        "Output",
    }
    assert isinstance(body["CreatedDate"], str) and body["Output"] == ""
    assert data[80:112] == hashlib.sha256(data[120:]).digest()


@pytest.mark.parametrize(
    "padded",
    [
        b"output_stream_data".ljust(32, b"\x00"),
        (b"\x00\x00output_stream_data").ljust(32, b" "),
        (b"  output_stream_data \x00").ljust(32, b"\x00"),
    ],
)
def test_it_strips_spaces_and_nuls_from_the_message_type(padded):
    data = bytearray(wire("output_stream_data", 3, b"hi"))
    data[4:36] = padded
    frame = decode_frame(bytes(data))
    assert frame.message_type == "output_stream_data"
    assert (frame.sequence_number, frame.payload) == (3, b"hi")


def test_it_takes_the_payload_to_the_end_of_the_frame_whatever_payload_length_says():
    frame = decode_frame(wire("output_stream_data", 0, b"abcdef", payload_length=2))
    assert frame.payload == b"abcdef"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (wire("output_stream_data", 0, b"x")[:119], "truncated"),
        (wire("output_stream_data", 0, b"x", header_length=0), "bad header length"),
        (wire("output_stream_data", 0, b"x", header_length=120), "bad header length"),
        (wire("output_stream_data", 0, b"x", header_length=9999), "bad header length"),
        (wire("", 0, b"x"), "empty message type"),
        (wire("output_stream_data", 0, b"x", created=0), "no created date"),
        (wire("output_stream_data", 0, b"x", digest=bytes(32)), "bad digest"),
        (
            wire("output_stream_data", 0, b"", payload_length=5, digest=bytes(32)),
            "bad digest",
        ),
    ],
)
def test_it_rejects_invalid_frames_with_a_reason(data, reason):
    with pytest.raises(FrameError) as raised:
        decode_frame(data)
    assert raised.value.reason == reason


def test_publication_messages_skip_the_date_and_digest_checks():
    frame = decode_frame(wire("pause_publication", created=0, digest=bytes(32), payload=b"z"))
    assert frame.message_type == "pause_publication"


def test_a_non_ascii_message_type_is_rejected():
    data = bytearray(wire("output_stream_data", 0, b"x"))
    data[4] = 0xFF
    with pytest.raises(FrameError):
        decode_frame(bytes(data))


message_types = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=32)


@settings(max_examples=100, deadline=None)
@given(
    message_type=message_types,
    sequence=st.integers(-(2**63), 2**63 - 1),
    flags=st.integers(0, 2**64 - 1),
    payload=st.binary(max_size=2048),
    payload_type=st.integers(0, 2**32 - 1),
    message_id=st.binary(min_size=16, max_size=16),
    created=st.integers(1, 2**64 - 1),
)
def test_encode_then_decode_gives_the_frame_back(
    message_type, sequence, flags, payload, payload_type, message_id, created
):
    frame = Frame(message_type, sequence, payload, payload_type, flags, message_id, created)
    assert decode_frame(encode_frame(frame)) == frame


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_either_decode_or_raise_frame_error(data):
    try:
        decode_frame(data)
    except FrameError:
        pass


def test_message_ids_are_unique_version_4_uuids_in_wire_order():
    ids = MessageIds()
    wires = [ids.next_wire() for _ in range(5000)]
    assert len(set(wires)) == len(wires)
    for wire_id in wires[:3] + wires[-3:]:
        parsed = uuid.UUID(bytes=wire_id[8:] + wire_id[:8])  # undo the half swap
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    assert MessageIds().next_wire()[8:] != ids.next_wire()[8:]  # random per sender


def test_an_ack_from_ack_for_is_the_hand_built_ack_byte_for_byte():
    acked = Frame("output_stream_data", 7, b"x", message_id=uuid.UUID(SPEC_UUID_TEXT).bytes)
    ids = MessageIds()
    data = ack_for(acked, ids)
    payload = (
        b'{"AcknowledgedMessageType":"output_stream_data",'
        b'"AcknowledgedMessageId":"8c5e6611-74c2-421b-9462-f7ab89a95c49",'
        b'"AcknowledgedMessageSequenceNumber":7,"IsSequentialMessage":true}'
    )
    created = struct.unpack_from(">Q", data, 40)[0]
    assert abs(created - time.time() * 1000) < 60_000
    expected = wire(
        "acknowledge",
        0,
        payload,
        payload_type=0,
        flags=3,
        created=created,
        message_id_wire=data[64:80],
    )
    assert data == expected
    assert ack_for(acked, ids)[64:80] != data[64:80]
