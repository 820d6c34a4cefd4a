"""The emulator's own promises: loopback only, the token frame, the thread helper."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from websockets.asyncio.client import connect

from ecsportal.ssm.agent import utf8_chunks
from ecsportal.ssm.client import SsmClient
from ecsportal.ssm.emulator import AgentEmulator, Faults, check_loopback, start_in_thread
from ecsportal.ssm.frames import decode_frame
from ecsportal.ssm.messages import ack_for
from ecsportal.ssm.session import EndKind, SessionEnded


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "example.com"])
def test_it_refuses_to_bind_beyond_loopback(host):
    with pytest.raises(ValueError, match="loopback"):
        AgentEmulator(host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.9.9.9", "::1", "localhost"])
def test_it_accepts_loopback_addresses(host):
    check_loopback(host)


def test_stream_urls_have_the_service_shape():
    emulator = AgentEmulator(port=4321)
    assert emulator.url_for("ecs-execute-command-0abc") == (
        "ws://127.0.0.1:4321/v1/data-channel/ecs-execute-command-0abc?role=publish_subscribe"
    )


@pytest.mark.asyncio
async def test_it_accepts_an_old_style_token_frame_and_sends_output_seq_0_flagged(
    emulator,
):
    url = emulator.register_session(session_id="old", token="t", command="echo hi")
    async with connect(url, compression=None) as ws:
        await ws.send(
            json.dumps(
                {
                    "MessageSchemaVersion": "1.0",
                    "RequestId": str(uuid.uuid4()),
                    "TokenValue": "t",
                }
            )
        )
        frame = decode_frame(await asyncio.wait_for(ws.recv(), 5))
    assert (frame.message_type, frame.sequence_number, frame.flags) == (
        "output_stream_data",
        0,
        1,
    )
    assert frame.payload_type == 1


@pytest.mark.asyncio
async def test_output_messages_are_at_most_1024_bytes_of_whole_utf8(emulator, tmp_path):
    text = ("é€😀" * 3000).encode()
    (tmp_path / "u.txt").write_bytes(text)
    url = emulator.register_session(session_id="frames", token="t", command=f"cat {tmp_path / 'u.txt'}")
    payloads: dict[int, bytes] = {}
    async with connect(url, compression=None) as ws:
        await ws.send(json.dumps({"RequestId": str(uuid.uuid4()), "TokenValue": "t"}))
        while sum(map(len, payloads.values())) < len(text):
            frame = decode_frame(await asyncio.wait_for(ws.recv(), 5))
            if frame.message_type == "output_stream_data":
                payloads[frame.sequence_number] = frame.payload
                await ws.send(ack_for(frame))
    assert b"".join(payloads[i] for i in sorted(payloads)) == text
    assert sorted(payloads) == list(range(len(payloads)))
    for payload in payloads.values():
        assert 0 < len(payload) <= 1024
        payload.decode("utf-8")


@pytest.mark.asyncio
async def test_a_session_cannot_be_connected_twice_at_once(emulator):
    url = emulator.register_session(session_id="once", token="t", command="sleep 2")
    async with SsmClient(url, "t"):
        await asyncio.sleep(0.3)
        async with SsmClient(url, "t") as second:
            assert [c async for c in second] == []
        assert second.end.kind == EndKind.ERROR


def test_the_thread_helper_serves_sessions_registered_from_another_thread():
    emulator = start_in_thread()
    try:
        url = emulator.register_session(
            session_id="threaded",
            token="t",
            command="echo from-thread",
            container="web",
        )
        assert url == emulator.url_for("threaded")

        async def run() -> bytes:
            async with SsmClient(url, "t") as session:
                return b"".join([c async for c in session])

        assert asyncio.run(run()) == b"from-thread\r\n"
    finally:
        emulator.stop()


def test_another_process_registers_sessions_over_the_registration_socket_with_the_key_only():
    from ecsportal.ssm.emulator import remote_registrar

    emulator = start_in_thread(registration_key="the-key")
    plain = start_in_thread()  # without a key there is no registration socket at all
    try:
        register = remote_registrar(emulator.emulator.registration_url, "the-key")
        url = register(session_id="remote", token="t", command="echo from-afar", container="web")
        assert url == emulator.url_for("remote")

        async def run() -> bytes:
            async with SsmClient(url, "t") as session:
                return b"".join([c async for c in session])

        assert asyncio.run(run()) == b"from-afar\r\n"
        with pytest.raises(RuntimeError, match="refused"):
            remote_registrar(emulator.emulator.registration_url, "not-the-key")(
                session_id="forged", token="t", command="id"
            )
        assert emulator.emulator._lookup("forged") is None
        with pytest.raises(Exception, match="404"):
            remote_registrar(plain.emulator.registration_url, "")(session_id="x", token="t", command="id")
    finally:
        emulator.stop()
        plain.stop()


def test_output_chunks_are_cut_before_an_incomplete_utf8_sequence():
    data = b"a" * 1023 + "€".encode() + b"z"
    chunks, carry = utf8_chunks(data)
    assert chunks == [b"a" * 1023, "€z".encode()] and carry == b""
    chunks, carry = utf8_chunks(b"ok" + "€".encode()[:2])
    assert chunks == [b"ok"] and carry == "€".encode()[:2]
    chunks, carry = utf8_chunks(b"\xff" * 2000)
    assert [len(c) for c in chunks] == [1024, 976] and carry == b""


@pytest.mark.asyncio
async def test_it_counts_the_output_it_had_to_resend(emulator, run_session, tmp_path):
    (tmp_path / "d.txt").write_bytes(b"x" * 5000)
    clean = await run_session(f"cat {tmp_path / 'd.txt'}")
    lossy = await run_session(f"cat {tmp_path / 'd.txt'}", faults=Faults(drop=frozenset({1, 3})))
    assert clean.output == lossy.output == b"x" * 5000
    ids = [r.client.url.split("/")[-1].split("?")[0] for r in (clean, lossy)]
    for _ in range(100):  # the emulator records a session once its socket has closed
        if all(i in emulator.retransmissions for i in ids):
            break
        await asyncio.sleep(0.05)
    assert emulator.retransmissions[ids[0]] == 0
    assert emulator.retransmissions[ids[1]] >= 2


def test_a_fleet_serves_each_session_from_the_process_that_took_its_registration():
    """`demo --emulator-processes N`: N processes share the registration port, and each answers
    a stream URL on its own port; the command runs under the process that answered."""
    import os
    import shlex
    import sys
    from urllib.parse import urlsplit

    from ecsportal.ssm.emulator import remote_registrar
    from ecsportal.ssm.fleet import EmulatorFleet

    fleet = EmulatorFleet(2, registration_key="the-key").start()
    own_port = dict(zip((p.pid for p in fleet.procs), fleet.ports, strict=True))
    parent = shlex.join([sys.executable, "-c", "import os; print(os.getppid())"])

    async def run(url: str) -> bytes:
        async with SsmClient(url, "t") as session:
            return b"".join([c async for c in session])

    try:
        register = remote_registrar(fleet.registration_url, "the-key")
        served: dict[int, int] = {}
        for i in range(40):  # the kernel spreads connections by address hash: both serve soon
            url = register(session_id=f"fleet-{i}", token="t", command=parent, container="web")
            served[int(asyncio.run(run(url)))] = urlsplit(url).port
            if len(served) == 2:
                break
        assert served == own_port  # each session ran under the process whose port it was given
        assert fleet.registration_port not in own_port.values()
        with pytest.raises(RuntimeError, match="refused"):
            remote_registrar(fleet.registration_url, "not-the-key")(session_id="forged", token="t", command="id")
        url = register(session_id="misdirected", token="t", command="id")
        shared = url.replace(f":{urlsplit(url).port}/", f":{fleet.registration_port}/")

        async def misdirected() -> SessionEnded:
            async with SsmClient(shared, "t") as session:
                assert [c async for c in session] == []
            return session.end

        end = asyncio.run(misdirected())  # the shared port takes registrations only
        assert end.kind == EndKind.ERROR and "404" in end.message

        async def stopped_under_a_session() -> int:
            url = register(session_id="long", token="t", command="sh -c 'echo $$; exec sleep 60'")
            async with SsmClient(url, "t") as session:
                first = await anext(aiter(session))
                await asyncio.to_thread(fleet.stop)
            return int(first)

        command = asyncio.run(stopped_under_a_session())
    finally:
        fleet.stop()
    assert [p.returncode for p in fleet.procs] == [0, 0]
    with pytest.raises(ProcessLookupError):  # stopping the fleet ended its sessions' commands
        os.kill(command, 0)
