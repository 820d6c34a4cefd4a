"""A keystroke's echo under load: what is on its path and what is not (no timing asserted).

- A socket on the runner's loop hands keys to the runner directly, not through the channel
  layer; the keys reach the shell while the recording's database write is held up.
- A run nobody types into yields to the loop's shells (`pacing`): its runner pauses after
  each chunk while the loop is late; a shell's own output never does; with no shell, no pause.
- The owners' access of every shell on a loop is asked in one database call.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from ecsportal.runs import pacing, shellinput
from ecsportal.runs.models import Run, RunChunk, RunStatus, SessionEvent
from ecsportal.ssm.client import SsmClient
from tests.runs import test_sessions
from tests.runs.lab import wait_ended
from tests.runs.test_sessions import _join, _running

open_shell = test_sessions.open_shell  # the fixture, shared


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_keys_bypass_the_layer_and_reach_the_shell_while_the_recording_is_held_up(cast, open_shell, monkeypatch):
    layer = get_channel_layer()
    sent_to_runner: list[dict] = []
    group_send = layer.group_send

    async def watching(group, message):
        if group.startswith("shell-"):
            sent_to_runner.append(message)
        await group_send(group, message)

    monkeypatch.setattr(layer, "group_send", watching)
    held, released = threading.Event(), threading.Event()
    record = shellinput._record

    def slow_record(run_pk, records):  # the recording's write, stuck until the test lets it go
        held.set()
        released.wait(30)
        record(run_pk, records)

    monkeypatch.setattr(shellinput, "_record", slow_record)
    run = await open_shell(cast.operator)
    await _running(run)
    owner = await _join(run, cast.operator)
    try:
        await owner.type("echo $((6*7))\r")  # the first keys: a "who typed" marker is queued
        await owner.until_output(b"42")
        assert await asyncio.to_thread(held.wait, 10), "the marker's write never started"
        await owner.type("echo $((7*8))\r")  # more keys while the marker's write is still stuck
        await owner.until_output(b"56")
        assert not released.is_set()
    finally:
        released.set()
    assert not [m for m in sent_to_runner if m["type"] == "shell.input"], "keys went through the channel layer"
    await owner.type("exit\r")
    ended = await wait_ended(run.pk)
    assert ended.status == RunStatus.COMPLETED
    kinds = await database_sync_to_async(list)(SessionEvent.objects.filter(run=ended).values_list("kind", flat=True))
    assert "m" in kinds  # the marker was stored once the write was let go
    await owner.communicator.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_bulk_run_pauses_for_the_shells_while_the_loop_is_late_and_a_shell_never_does(
    cast, open_shell, run_as, monkeypatch
):
    turns: list[float] = []

    async def bulk_turn(self):
        turns.append(self.pause)

    monkeypatch.setattr(pacing.LoopPacer, "bulk_turn", bulk_turn)
    monkeypatch.setattr(pacing, "LAG_TARGET", -1.0)  # every probe says "late": the pause is up
    read_ahead: list[int | None] = []
    lower = SsmClient.read_ahead

    def record(self, limit):
        read_ahead.append(limit)
        lower(self, limit)

    monkeypatch.setattr(SsmClient, "read_ahead", record)
    shell = await open_shell(cast.operator)
    await _running(shell)
    owner = await _join(shell, cast.operator)
    await owner.type("echo $((6*7))\r")
    await owner.until_output(b"42")
    assert turns == []  # the shell's output took no bulk turn
    run = await run_as(cast.operator, "seq 1 20000", mode="raw")
    ended = await wait_ended(run.pk)
    assert ended.status == RunStatus.COMPLETED  # raw mode: no exit code
    assert turns and max(turns) > 0  # the bulk run's runner paused, the shell being open
    assert read_ahead[:1] == [pacing.PACED_READ_AHEAD]  # and its client read less ahead meanwhile
    rows = RunChunk.objects.filter(run=ended).order_by("seq").values_list("data", flat=True)
    transcript = b"".join(map(bytes, await database_sync_to_async(list)(rows)))
    assert transcript.split() == [str(n).encode() for n in range(1, 20001)]  # paced, not cut
    await owner.type("exit\r")
    await wait_ended(shell.pk)
    await owner.communicator.disconnect()


def test_the_pause_grows_while_the_loop_is_late_and_goes_once_it_is_on_time():
    loop = asyncio.new_event_loop()
    try:
        pacer = pacing.LoopPacer(loop)
        pacer.observe(0.0)
        assert pacer.pause == 0
        pauses = []
        for _ in range(12):
            pacer.observe(pacing.LAG_TARGET * 10)
            pauses.append(pacer.pause)
        assert pauses[0] == pacing.FIRST_PAUSE and pauses == sorted(pauses) and pauses[-1] == pacing.MAX_PAUSE
        for _ in range(12):
            pacer.observe(0.0)
        assert pacer.pause == 0
        pacer.observe(1.0)
        pacer.shells = 1
        pacer.shell_closed()  # the last shell gone: bulk runs go at full speed again
        assert pacer.pause == 0
    finally:
        loop.close()


@pytest.mark.django_db(transaction=True)
def test_the_owners_access_of_many_shells_is_asked_in_one_call(cast, runs_lab, django_assert_max_num_queries):
    from ecsportal.accounts.models import Membership

    def shell_of(user) -> Run:
        return Run.objects.create(
            account=runs_lab, requested_by=user, region="r", cluster="c", task_arn="t", container="app",
            command="/bin/sh", interactive=True,
        )  # fmt: skip

    runs = [shell_of(cast.operator) for _ in range(5)] + [shell_of(cast.admin) for _ in range(5)]
    Membership.objects.filter(user=cast.operator, account=runs_lab).delete()
    with django_assert_max_num_queries(8):  # not one round per shell
        lost = shellinput.owners_access_lost([r.pk for r in runs])
    assert {lost[r.pk] for r in runs[:5]} == {f"operator is no longer an operator on {runs_lab.name}."}
    assert {lost[r.pk] for r in runs[5:]} == {""}
    assert shellinput.owner_access_lost(runs[0].pk) == lost[runs[0].pk]
