"""The AWS Session Manager data channel, as ECS Exec uses it.

* ``frames``   – the binary frame codec (no I/O);
* ``streams``  – sequence numbers, acks, ordering and retransmission (no I/O);
* ``session``  – the client's protocol state machine: bytes in, events out (no I/O);
* ``agent``    – the agent's protocol state machine, used by the emulator (no I/O);
* ``client``   – ``SsmClient``, the asyncio driver over ``session`` (websockets);
* ``emulator`` – ``AgentEmulator``/``start_in_thread``, the other end for demo and tests;
* ``fleet``    – ``EmulatorFleet``: several emulator processes behind one registration port.

This package imports only the standard library and ``websockets``. The protocol is
described in docs/ssm-data-channel.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecsportal.ssm.session import EndKind, SessionEnded

if TYPE_CHECKING:
    from ecsportal.ssm.client import SsmClient

__all__ = ["EndKind", "SessionEnded", "SsmClient"]


def __getattr__(name: str) -> object:
    # Lazy, so that ``python -m ecsportal.ssm.client`` does not import itself twice.
    if name == "SsmClient":
        from ecsportal.ssm.client import SsmClient

        return SsmClient
    raise AttributeError(name)
