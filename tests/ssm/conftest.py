"""Fixtures for the ssm tests: a real emulator on 127.0.0.1 and a hand-written frame builder.

``wire`` builds frames with ``struct`` and ``hashlib`` straight from the table in
docs/ssm-data-channel.md, independently of ``ecsportal.ssm.frames``, so that codec
tests compare the code against the spec rather than against itself.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import pytest_asyncio

from ecsportal.ssm.client import SsmClient
from ecsportal.ssm.emulator import AgentEmulator, Faults
from ecsportal.ssm.session import SessionEnded

SPEC_UUID_WIRE = bytes.fromhex("9462f7ab89a95c498c5e661174c2421b")
SPEC_UUID_TEXT = "8c5e6611-74c2-421b-9462-f7ab89a95c49"


def wire(
    message_type: str,
    sequence: int = 0,
    payload: bytes = b"",
    *,
    payload_type: int = 1,
    flags: int = 0,
    created: int = 1_700_000_000_123,
    message_id_wire: bytes = SPEC_UUID_WIRE,
    pad: bytes = b" ",
    header_length: int = 116,
    digest: bytes | None = None,
    payload_length: int | None = None,
    schema_version: int = 1,
) -> bytes:
    """A frame laid out by hand, field by field, from the spec's table."""
    return b"".join(
        [
            struct.pack(">I", header_length),
            message_type.encode().ljust(32, pad),
            struct.pack(">I", schema_version),
            struct.pack(">Q", created),
            struct.pack(">q", sequence),
            struct.pack(">Q", flags),
            message_id_wire,
            hashlib.sha256(payload).digest() if digest is None else digest,
            struct.pack(">I", payload_type),
            struct.pack(">I", len(payload) if payload_length is None else payload_length),
            payload,
        ]
    )


@dataclass
class Result:
    output: bytes
    chunks: list[bytes]
    end: SessionEnded
    client: SsmClient


_ids = itertools.count()


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[AgentEmulator]:
    em = AgentEmulator()
    await em.start()
    yield em
    await em.stop()


Runner = Callable[..., Awaitable[Result]]


@pytest.fixture
def run_session(emulator: AgentEmulator) -> Runner:
    """Register a session, connect a client, optionally type input, collect everything."""

    async def run(
        command: str,
        *,
        inputs: list[bytes] = (),  # type: ignore[assignment]
        size: tuple[int, int] | None = (80, 24),
        faults: Faults | None = None,
        handshake: bool = False,
        kms: bool = False,
        token: str = "tok-secret",
        client_token: str | None = None,
        **client_options: object,
    ) -> Result:
        session_id = f"sess-{next(_ids)}"
        url = emulator.register_session(
            session_id=session_id,
            token=token,
            command=command,
            container="app",
            handshake=handshake,
            kms=kms,
            faults=faults,
        )
        client_options.setdefault("start_grace", 0.2)
        client_options.setdefault("idle_timeout", 20)
        chunks: list[bytes] = []
        client = SsmClient(url, client_token or token, **client_options)  # type: ignore[arg-type]
        async with client:
            if size:
                await client.resize(*size)
            for data in inputs:
                await client.send_input(data)
            async for chunk in client:
                chunks.append(chunk)
        assert client.end is not None
        return Result(b"".join(chunks), chunks, client.end, client)

    return run
