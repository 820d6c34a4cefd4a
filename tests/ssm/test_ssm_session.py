"""The client protocol core, fed hand-written frames and a simulated clock; no sockets."""

from __future__ import annotations

import hashlib
import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecsportal.ssm.agent import AgentSession, InputData
from ecsportal.ssm.session import (
    ClientSession,
    EndKind,
    OutputReceived,
    ProtocolWarning,
    SessionEnded,
    SessionStarted,
)
from ecsportal.ssm.streams import RetransmissionTimeout

from .conftest import SPEC_UUID_TEXT, wire


def output(sequence: int, payload: bytes, **kwargs) -> bytes:
    return wire("output_stream_data", sequence, payload, **kwargs)


def outputs_of(events) -> list[bytes]:
    return [e.data for e in events if isinstance(e, OutputReceived)]


def fields(data: bytes) -> dict:
    """Read a frame the client sent, by offsets from the spec (not with the decoder)."""
    (length,) = struct.unpack(">I", data[116:120])
    assert struct.unpack(">I", data[:4]) == (116,)
    assert data[80:112] == hashlib.sha256(data[120:]).digest()
    assert length == len(data) - 120
    return {
        "type": data[4:36].decode().rstrip(" "),
        "seq": struct.unpack(">q", data[48:56])[0],
        "flags": struct.unpack(">Q", data[56:64])[0],
        "payload_type": struct.unpack(">I", data[112:116])[0],
        "payload": data[120:],
    }


def started_session() -> ClientSession:
    session = ClientSession()
    session.receive_data(output(0, b"$ "), 0.0)
    session.data_to_send()
    return session


def test_it_acks_an_output_message_as_the_spec_shows():
    session = ClientSession()
    events = session.receive_data(output(0, b"hello", flags=1), 0.0)
    assert outputs_of(events) == [b"hello"]
    [ack] = session.data_to_send()
    sent = fields(ack)
    assert (sent["type"], sent["seq"], sent["flags"], sent["payload_type"]) == (
        "acknowledge",
        0,
        3,
        0,
    )
    assert json.loads(sent["payload"]) == {
        "AcknowledgedMessageType": "output_stream_data",
        "AcknowledgedMessageId": SPEC_UUID_TEXT,
        "AcknowledgedMessageSequenceNumber": 0,
        "IsSequentialMessage": True,
    }


def test_it_holds_input_until_the_first_output_then_sends_size_as_seq_0():
    session = ClientSession()
    session.resize(132, 43, 0.0)
    session.send_input(b"ls\n", 0.0)
    assert session.data_to_send() == []
    events = session.receive_data(output(0, b"$ "), 0.1)
    assert any(isinstance(e, SessionStarted) and not e.handshake for e in events)
    ack, size, stdin = (fields(d) for d in session.data_to_send())
    assert ack["type"] == "acknowledge"
    assert (size["type"], size["seq"], size["payload_type"]) == (
        "input_stream_data",
        0,
        3,
    )
    assert json.loads(size["payload"]) == {"cols": 132, "rows": 43}
    assert (stdin["seq"], stdin["payload_type"], stdin["payload"]) == (1, 1, b"ls\n")
    assert size["flags"] == stdin["flags"] == 0


def test_it_splits_stdin_into_messages_of_at_most_1024_bytes():
    session = started_session()
    session.send_input(bytes(range(256)) * 10, 0.0)
    sent = [fields(d) for d in session.data_to_send()]
    assert [len(s["payload"]) for s in sent] == [1024, 1024, 512]
    assert [s["seq"] for s in sent] == [0, 1, 2]
    assert b"".join(s["payload"] for s in sent) == bytes(range(256)) * 10


def test_it_acks_out_of_order_messages_at_once_and_delivers_them_in_order():
    session = ClientSession()
    assert outputs_of(session.receive_data(output(2, b"c"), 0.0)) == []
    assert outputs_of(session.receive_data(output(1, b"b"), 0.0)) == []
    assert len(session.data_to_send()) == 2
    assert outputs_of(session.receive_data(output(0, b"a"), 0.0)) == [b"a", b"b", b"c"]


def test_it_acks_a_duplicate_again_but_delivers_it_once():
    session = ClientSession()
    first = outputs_of(session.receive_data(output(0, b"a"), 0.0))
    again = outputs_of(session.receive_data(output(0, b"a"), 0.0))
    assert (first, again) == ([b"a"], [])
    acks = [fields(d) for d in session.data_to_send()]
    assert [a["type"] for a in acks] == ["acknowledge", "acknowledge"]


def test_it_retransmits_the_oldest_unacked_message_after_the_rto():
    session = started_session()
    session.send_input(b"a", 1.0)
    session.send_input(b"b", 1.0)
    [first, _] = session.data_to_send()
    session.tick(1.15)
    assert session.data_to_send() == []  # the initial RTO is 200 ms
    session.tick(1.25)
    assert session.data_to_send() == [first]  # same bytes: same seq and MessageId
    ack = json.dumps({"AcknowledgedMessageSequenceNumber": 0}).encode()
    session.receive_data(wire("acknowledge", 0, ack, payload_type=0, flags=3), 1.3)
    session.tick(1.6)
    assert [fields(d)["payload"] for d in session.data_to_send()] == [b"b"]
    assert session.retransmissions == 2


def test_the_rto_follows_the_tcp_formula_and_is_capped_at_one_second():
    rto = RetransmissionTimeout()
    assert (rto.srtt, rto.rttvar, rto.rto) == (0.1, 0.0, 0.2)
    rto.observe(0.05)
    assert rto.rttvar == pytest.approx(0.0125)
    assert rto.srtt == pytest.approx(0.09375)
    assert rto.rto == pytest.approx(0.09375 + 0.05)
    rto.observe(0.0937)
    assert rto.rto >= rto.srtt + 0.01
    for _ in range(20):
        rto.observe(30.0)
    assert rto.rto == 1.0


def test_channel_closed_with_empty_output_is_a_normal_end_and_is_not_acked():
    session = started_session()
    body = json.dumps({"Output": "", "MessageType": "channel_closed"}).encode()
    events = session.receive_data(wire("channel_closed", 0, body, payload_type=0), 0.0)
    assert SessionEnded(EndKind.NORMAL, "") in events
    assert session.data_to_send() == []


def test_channel_closed_with_output_is_an_error_end_carrying_it():
    session = started_session()
    body = json.dumps({"Output": "Unable to start command"}).encode()
    session.receive_data(wire("channel_closed", 0, body, payload_type=0), 0.0)
    assert session.end == SessionEnded(EndKind.ERROR, "Unable to start command")


def handshake_request(*actions: dict) -> bytes:
    body = {"AgentVersion": "3.3", "RequestedClientActions": list(actions)}
    return output(0, json.dumps(body).encode(), payload_type=5, flags=1)


SESSION_TYPE = {
    "ActionType": "SessionType",
    "ActionParameters": {"SessionType": "InteractiveCommands", "Properties": None},
}


def test_it_answers_a_handshake_with_seq_0_and_sends_size_only_after_completion():
    session = ClientSession()
    session.resize(100, 30, 0.0)
    session.receive_data(handshake_request(SESSION_TYPE), 0.0)
    ack, response = (fields(d) for d in session.data_to_send())
    assert ack["type"] == "acknowledge"
    assert (response["seq"], response["payload_type"]) == (0, 6)
    body = json.loads(response["payload"])
    assert body["ProcessedClientActions"] == [
        {
            "ActionType": "SessionType",
            "ActionStatus": 1,
            "ActionResult": None,
            "Error": "",
        }
    ]
    complete = json.dumps({"HandshakeTimeToComplete": 5, "CustomerMessage": "hi"})
    events = session.receive_data(output(1, complete.encode(), payload_type=7), 0.1)
    assert SessionStarted(True, "hi") in events
    sent = [fields(d) for d in session.data_to_send()]
    assert [(s["seq"], s["payload_type"]) for s in sent[1:]] == [(1, 3)]


def test_it_refuses_kms_as_unsupported_and_ends_with_a_clear_error():
    kms = {"ActionType": "KMSEncryption", "ActionParameters": {"KMSKeyId": "k"}}
    session = ClientSession()
    events = session.receive_data(handshake_request(SESSION_TYPE, kms), 0.0)
    response = json.loads(fields(session.data_to_send()[1])["payload"])
    statuses = [a["ActionStatus"] for a in response["ProcessedClientActions"]]
    assert statuses == [1, 3]
    [end] = [e for e in events if isinstance(e, SessionEnded)]
    assert end.kind == EndKind.ERROR and "KMS" in end.message


def test_pause_publication_holds_input_and_retransmission_until_start():
    session = started_session()
    session.receive_data(wire("pause_publication", payload_type=0), 0.0)
    session.send_input(b"x", 0.0)
    session.tick(5.0)
    assert session.data_to_send() == []
    session.receive_data(wire("start_publication", payload_type=0), 5.0)
    assert [fields(d)["payload"] for d in session.data_to_send()] == [b"x"]


BAD_FRAMES = [
    pytest.param(output(0, b"x")[:60], "truncated", id="truncated"),
    pytest.param(output(0, b"x", header_length=200), "bad header length", id="length-lie"),
    pytest.param(output(0, b"x", header_length=0), "bad header length", id="length-zero"),
    pytest.param(output(0, b"x", digest=b"\x01" * 32), "bad digest", id="digest"),
    pytest.param(output(0, b"x", created=0), "no created date", id="no-date"),
    pytest.param(
        wire("who_knows", 0, b"x"),
        "unknown message type 'who_knows'",
        id="unknown-type",
    ),
    pytest.param(
        wire("acknowledge", 0, b"{not json", payload_type=0),
        "malformed ack",
        id="bad-ack",
    ),
]


@pytest.mark.parametrize(("data", "reason"), BAD_FRAMES)
def test_a_bad_frame_is_dropped_unacked_and_counted(data, reason):
    session = ClientSession()
    events = session.receive_data(data, 0.0)
    assert session.dropped == {reason: 1}
    assert session.data_to_send() == []
    assert outputs_of(events) == [] and session.end is None
    assert any(isinstance(e, ProtocolWarning) for e in events)
    assert outputs_of(session.receive_data(output(0, b"ok"), 0.0)) == [b"ok"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=5))
def test_garbage_never_raises_out_of_the_core(blobs):
    session = ClientSession()
    for blob in blobs:
        session.receive_data(blob, 0.0)
        session.receive_data(output(0, b"a")[:120] + blob, 0.0)
    session.tick(10.0)


FATES = st.sampled_from(["deliver", "deliver", "drop", "duplicate", "delay"])


def transfer(sender, receiver, fates, now, held):
    """Move one batch of frames across a lossy link; delayed ones overtake nothing later."""
    out = []
    for item in sender():
        data = getattr(item, "data", item)
        fate = next(fates, "deliver")
        if fate == "drop":
            continue
        if fate == "delay":
            held.append(data)
            continue
        out.extend(receiver(data, now))
        if fate == "duplicate":
            out.extend(receiver(data, now))
    return out


@settings(max_examples=100, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=25),
    fates=st.lists(FATES, max_size=300),
)
def test_any_drops_duplicates_and_reorders_still_deliver_exactly_the_output(chunks, fates):
    agent, client = AgentSession(session_id="s"), ClientSession()
    fate_iter, held_out, held_back = iter(fates), [], []
    received, now = [], 0.0
    for chunk in chunks:
        agent.send_output(chunk, now)
    for _ in range(3000):
        received += outputs_of(transfer(agent.take_outbox, client.receive_data, fate_iter, now, held_out))
        for data in held_out[::-1]:  # released late and in reverse: reordered
            received += outputs_of(client.receive_data(data, now))
        held_out.clear()
        transfer(client.data_to_send, agent.receive_data, fate_iter, now, held_back)
        for data in held_back:
            agent.receive_data(data, now)
        held_back.clear()
        if not agent.unacked:
            break
        now += 0.1
        agent.tick(now)
    assert agent.unacked == 0
    assert received == chunks


@settings(max_examples=50, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=15),
    fates=st.lists(FATES, max_size=200),
)
def test_stdin_reaches_the_agent_exactly_once_in_order_over_a_lossy_link(chunks, fates):
    agent, client = AgentSession(session_id="s"), started_session()
    fate_iter, held, got, now = iter(fates), [], [], 0.0
    for chunk in chunks:
        client.send_input(chunk, now)
    for _ in range(3000):
        events = transfer(client.data_to_send, agent.receive_data, fate_iter, now, held)
        events += [e for d in held[::-1] for e in agent.receive_data(d, now)]
        held.clear()
        got += [e.data for e in events if isinstance(e, InputData)]
        transfer(agent.take_outbox, client.receive_data, fate_iter, now, [])
        if not client.unacked:
            break
        now += 0.1
        client.tick(now)
    assert client.unacked == 0
    assert got == chunks


def test_the_agents_output_messages_follow_the_spec_layout_with_distinct_ids():
    agent = AgentSession(session_id="s")
    for n in range(3):
        agent.send_output(b"chunk %d" % n, 0.0)
    sent = [item.data for item in agent.take_outbox()]
    assert [fields(d)["type"] for d in sent] == ["output_stream_data"] * 3
    assert [(fields(d)["seq"], fields(d)["flags"]) for d in sent] == [(0, 1), (1, 0), (2, 0)]
    assert [fields(d)["payload"] for d in sent] == [b"chunk 0", b"chunk 1", b"chunk 2"]
    assert len({d[64:80] for d in sent}) == 3
    assert all(struct.unpack(">Q", d[40:48])[0] > 0 for d in sent)
