"""The in-memory channel layer, for a portal served by one process (no REDIS_URL).

Channels' `InMemoryChannelLayer` walks every channel queue and every group membership, to
expire old ones, on each `group_send` and each `receive`, and sends to a group through one
task per member. With a hundred live sockets that walk was the largest part of relaying one
line of a run's output (tests/benchmarks/relay.py). This layer expires the same things at most
once a second and puts a group's message on each member's queue directly. Everything else is
Channels' own: the per-channel capacity (a full socket's queue drops the message, which the
run consumer then reads from the database), the expiry times, the message copies.
"""

from __future__ import annotations

import time
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer as ChannelsInMemoryLayer


class InMemoryChannelLayer(ChannelsInMemoryLayer):
    clean_every = 1.0  # seconds between two walks for expired messages and memberships

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cleaned_at = float("-inf")

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._cleaned_at < self.clean_every:
            return
        self._cleaned_at = now
        super()._clean_expired()

    async def group_send(self, group: str, message: dict) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            try:
                await self.send(channel, message)
            except ChannelFull:
                pass  # as Channels does: that member misses this message
