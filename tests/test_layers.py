"""The in-memory channel layer (ecsportal/layers.py): Channels' behaviour, at less cost per message."""

from __future__ import annotations

import time

import pytest

from ecsportal.layers import InMemoryChannelLayer

pytestmark = pytest.mark.asyncio


async def test_a_group_message_reaches_every_member_and_a_full_member_misses_it_alone():
    layer = InMemoryChannelLayer(capacity=2)
    fast, slow = await layer.new_channel(), await layer.new_channel()
    for channel in (fast, slow):
        await layer.group_add("run-1", channel)
    await layer.send(slow, {"type": "x", "n": 0})
    await layer.send(slow, {"type": "x", "n": 0})  # slow's queue is now full
    await layer.group_send("run-1", {"type": "x", "n": 1})
    assert (await layer.receive(fast))["n"] == 1
    assert [(await layer.receive(slow))["n"] for _ in range(2)] == [0, 0]  # 1 was dropped for slow only
    await layer.group_send("run-1", {"type": "x", "n": 2})
    assert (await layer.receive(fast))["n"] == 2 and (await layer.receive(slow))["n"] == 2


async def test_expired_messages_and_their_channels_still_go(monkeypatch):
    layer = InMemoryChannelLayer(expiry=60)
    gone, kept = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("run-1", gone)
    await layer.group_add("run-1", kept)
    await layer.send(gone, {"type": "old"})
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    await layer.group_send("run-1", {"type": "new"})  # the first walk: gone's old message expired
    assert list(layer.groups["run-1"]) == [kept]
    assert (await layer.receive(kept))["type"] == "new"
