"""SsmClient against the agent emulator over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import shlex
import socket

import pytest

from ecsportal.ssm.client import SsmClient
from ecsportal.ssm.emulator import Faults
from ecsportal.ssm.session import EndKind

pytestmark = pytest.mark.asyncio


def text_file(tmp_path, size: int, name: str = "data.txt") -> tuple[str, bytes]:
    """Random base64 without newlines, so a PTY passes it through unchanged."""
    data = base64.b64encode(os.urandom(size * 3 // 4 + 3))[:size]
    path = tmp_path / name
    path.write_bytes(data)
    return shlex.quote(str(path)), data


async def test_it_streams_a_short_commands_output(run_session):
    result = await run_session("echo hello")
    assert result.output == b"hello\r\n"
    assert result.end.kind == EndKind.NORMAL


async def test_it_runs_a_runner_style_shell_wrapper_faithfully(run_session):
    result = await run_session("/bin/sh -c 'echo out; false; echo MARKER$?'")
    assert result.output == b"out\r\nMARKER1\r\n"


async def test_it_delivers_5_mb_byte_exact(run_session, tmp_path):
    path, data = text_file(tmp_path, 5_000_000)
    result = await run_session(f"cat {path}")
    assert result.end.kind == EndKind.NORMAL
    assert len(result.output) == len(data)
    assert hashlib.sha256(result.output).digest() == hashlib.sha256(data).digest()


async def test_stdin_round_trips_through_cat(run_session):
    result = await run_session("cat", inputs=[b"hello\n", b"\x04"])
    # the terminal echoes the line, then cat prints it; Ctrl-D ends cat
    assert result.output == b"hello\r\nhello\r\n"
    assert result.end.kind == EndKind.NORMAL


async def test_ctrl_c_interrupts_the_command(run_session):
    result = await run_session("sleep 30", inputs=[b"\x03"])
    assert result.end.kind == EndKind.NORMAL
    assert b"^C" in result.output


async def test_the_terminal_size_reaches_the_command(run_session):
    result = await run_session("/bin/sh -c 'read x; stty size'", size=(123, 45), inputs=[b"\n"])
    assert result.output.endswith(b"45 123\r\n")


async def test_a_handshake_session_works(run_session):
    result = await run_session("/bin/sh -c 'read x; stty size'", size=(90, 33), inputs=[b"\n"], handshake=True)
    assert result.output.endswith(b"33 90\r\n")
    assert result.end.kind == EndKind.NORMAL


async def test_a_kms_session_is_refused_with_a_clear_message(run_session):
    result = await run_session("echo secret", kms=True, idle_timeout=5)
    assert result.end.kind == EndKind.ERROR
    assert "KMS" in result.end.message
    assert result.output == b""


async def test_a_bad_token_is_refused(run_session):
    result = await run_session("echo hi", client_token="wrong")
    assert result.end.kind == EndKind.ERROR
    assert "token" in result.end.message
    assert "wrong" not in result.end.message


async def test_an_unknown_executable_ends_with_the_agents_error(run_session):
    result = await run_session("no-such-program-here --flag")
    assert result.end.kind == EndKind.ERROR
    assert "Unable to start command" in result.end.message
    assert "no-such-program-here" in result.end.message


async def test_an_abrupt_close_mid_stream_is_a_lost_channel(run_session, tmp_path):
    path, _ = text_file(tmp_path, 200_000)
    result = await run_session(f"cat {path}", faults=Faults(close_after=5))
    assert result.end.kind == EndKind.CHANNEL_LOST
    assert len(result.output) < 200_000


async def test_an_end_without_channel_closed_is_a_lost_channel(run_session):
    result = await run_session("echo bye", faults=Faults(no_channel_closed=True))
    assert result.output == b"bye\r\n"
    assert result.end.kind == EndKind.CHANNEL_LOST


async def test_a_stalled_agent_hits_the_idle_timeout(run_session, tmp_path):
    path, _ = text_file(tmp_path, 100_000)
    result = await run_session(f"cat {path}", faults=Faults(stall_after=3), idle_timeout=0.5)
    assert result.end.kind == EndKind.TIMED_OUT
    assert "0.5 s" in result.end.message


async def test_a_server_that_never_answers_hits_the_open_timeout():
    async def silent(reader, writer):
        await asyncio.sleep(5)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with SsmClient(f"ws://127.0.0.1:{port}/v1/data-channel/x", "t", open_timeout=0.3) as s:
        chunks = [c async for c in s]
    server.close()
    assert chunks == []
    assert s.end is not None and s.end.kind == EndKind.TIMED_OUT


async def test_a_refused_connection_ends_with_an_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with SsmClient(f"ws://127.0.0.1:{port}/v1/data-channel/x", "t") as s:
        pass
    assert s.end is not None and s.end.kind == EndKind.ERROR
    assert "could not open" in s.end.message


async def test_an_unknown_session_is_refused(emulator):
    async with SsmClient(emulator.url_for("nobody"), "t") as s:
        chunks = [c async for c in s]
    assert chunks == [] and s.end.kind == EndKind.ERROR and "404" in s.end.message


@pytest.mark.parametrize(
    "faults",
    [
        Faults(drop=frozenset({0, 1, 3, 40})),
        Faults(duplicate=frozenset({0, 2, 5, 41})),
        Faults(reorder=frozenset({0, 4, 6, 42})),
        Faults(corrupt=frozenset({1, 7, 43})),
        Faults(pause_after=3, pause_seconds=0.3),
        Faults(
            drop=frozenset({2}),
            duplicate=frozenset({3}),
            reorder=frozenset({4}),
            corrupt=frozenset({5}),
        ),
    ],
    ids=["drop", "duplicate", "reorder", "corrupt", "pause", "all"],
)
async def test_faulty_output_frames_still_give_the_exact_output(run_session, tmp_path, faults):
    path, data = text_file(tmp_path, 60_000)
    started = asyncio.get_running_loop().time()
    result = await run_session(f"cat {path}", faults=faults)
    assert result.output == data
    assert result.end.kind == EndKind.NORMAL
    assert result.client.core.dropped["bad digest"] == len(faults.corrupt)
    assert result.client.core.duplicates >= len(faults.duplicate)
    if faults.pause_after is not None:
        assert asyncio.get_running_loop().time() - started >= faults.pause_seconds


async def test_withheld_acks_make_the_client_retransmit_its_input(run_session):
    result = await run_session(
        "/bin/sh -c 'read x; sleep 0.6; echo got-$x'",
        inputs=[b"abc\n"],
        faults=Faults(withhold_acks=frozenset({0, 1})),
    )
    assert result.output == b"abc\r\ngot-abc\r\n"  # echoed and delivered once
    assert result.client.core.retransmissions >= 2


async def test_utf8_is_never_split_across_chunks(run_session, tmp_path):
    path = tmp_path / "utf8.txt"
    text = ("é€😀" * 2000).encode()
    path.write_bytes(text)
    result = await run_session(f"cat {shlex.quote(str(path))}")
    assert result.output == text
    for chunk in result.chunks:  # chunks are whole agent messages joined
        chunk.decode("utf-8")


async def test_the_token_never_reaches_the_logs(run_session, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("websockets", "ecsportal", "asyncio"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    await run_session("echo hi", token="super-secret-token-value")
    assert caplog.records  # debug logging really was on
    assert "super-secret-token-value" not in caplog.text
    assert "super-secret-token-value" not in repr(caplog.records)


async def test_a_lowered_read_ahead_stops_reading_the_socket_and_loses_nothing(emulator, tmp_path):
    """A bulk run yielding to shells lowers its client's read-ahead (runs/pacing.py): the reader
    then stops after a few messages, not after the usual megabyte; raised again, it reads on."""
    path, data = text_file(tmp_path, 400_000)
    url = emulator.register_session(session_id="ahead", token="t", command=f"cat {path}")
    received = bytearray()
    async with SsmClient(url, "t") as client:
        client.read_ahead(8192)
        await asyncio.sleep(1.0)  # nothing taken: the reader fills what it may, then waits
        assert 8192 <= client.buffered <= 8192 + 1024  # stopped within one agent message of the limit
        client.read_ahead(None)
        await asyncio.sleep(1.0)
        assert client.buffered > 100_000  # the usual read-ahead again
        async for chunk in client:
            received += chunk
    assert client.end.kind == EndKind.NORMAL
    assert bytes(received) == data


class Gate:
    """What a bulk run's client yields to (runs/pacing.py's `LoopPacer`), held by hand."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.asked = 0

    def must_wait(self) -> bool:
        self.asked += 1
        return not self.open.is_set()

    async def released(self) -> None:
        await self.open.wait()


async def test_a_client_yielding_to_a_shut_gate_takes_no_message_until_it_opens_and_loses_nothing(emulator, tmp_path):
    """A bulk run waits while a shell's echo is on its way (runs/pacing.py): its reader takes
    no message (none parsed, none acknowledged) until the gate opens; then everything comes."""
    path, data = text_file(tmp_path, 300_000)
    url = emulator.register_session(session_id="gated", token="t", command=f"cat {path}")
    gate = Gate()
    received = bytearray()
    async with SsmClient(url, "t") as client:
        client.yield_to(gate)
        await asyncio.sleep(1.0)  # the agent has sent what its window allows
        assert gate.asked >= 1 and client.buffered == 0  # asked, and waited: nothing taken
        gate.open.set()
        async for chunk in client:
            received += chunk
    assert client.end.kind == EndKind.NORMAL
    assert bytes(received) == data


async def test_the_acks_of_messages_that_arrived_together_go_in_one_write(emulator, tmp_path):
    """Every output message needs an ack; acks for messages parsed from one read go out in one
    socket write, not one write (one system call) each."""
    path, data = text_file(tmp_path, 300_000)
    url = emulator.register_session(session_id="acks", token="t", command=f"cat {path}")
    gate = Gate()
    received = bytearray()
    async with SsmClient(url, "t") as client:
        transport = client._ws.transport
        writes: list[int] = []
        write = transport.write

        def counted(chunk):
            writes.append(len(chunk))
            write(chunk)

        transport.write = counted
        client.yield_to(gate)
        await asyncio.sleep(1.0)  # hundreds of messages wait in the socket, unread
        gate.open.set()
        async for chunk in client:
            received += chunk
    assert bytes(received) == data
    messages = len(data) // 1024  # the agent sends at most 1,024 bytes a message
    assert writes and len(writes) < messages / 4, (len(writes), messages)


async def test_closing_early_ends_the_session_as_closed(emulator):
    url = emulator.register_session(session_id="early", token="t", command="sleep 30")
    async with SsmClient(url, "t", start_grace=0.1) as s:
        await asyncio.sleep(0.3)
    assert s.end is not None and s.end.kind == EndKind.CLOSED


async def test_the_command_line_client_exits_when_the_session_ends_while_stdin_stays_open():
    await asyncio.to_thread(_cli_exits_with_stdin_open)


def _cli_exits_with_stdin_open() -> None:
    import subprocess
    import sys

    from ecsportal.ssm.emulator import start_in_thread

    emulator = start_in_thread()
    try:
        url = emulator.register_session(session_id="cli-exit", token="cli-token", command="echo bye")
        proc = subprocess.Popen(
            [sys.executable, "-m", "ecsportal.ssm.client", "--url", url, "--token", "cli-token"],
            stdin=subprocess.PIPE,  # kept open: nothing is ever written or closed
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            out = proc.stdout.read()  # returns once the client exits and closes its stdout
            proc.wait(timeout=30)
        finally:
            proc.kill()
            proc.stdin.close()
    finally:
        emulator.stop()
    assert proc.returncode == 0
    assert b"bye" in out
