"""A keystroke's echo under load: what is on its path and what is not (no timing asserted).

- A socket on the runner's loop hands keys to the runner directly, not through the channel
  layer; the keys reach the shell while the recording's database write is held up.
- A run nobody types into yields to the loop's shells (`pacing`): a keystroke holds it until
  the echo is out; while someone types, a busy process makes it wait; a shell never waits.
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
        await owner.until_line(b"42")
        assert await asyncio.to_thread(held.wait, 10), "the marker's write never started"
        await owner.type("echo $((7*8))\r")  # more keys while the marker's write is still stuck
        await owner.until_line(b"56")
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
async def test_a_bulk_run_waits_for_a_keystrokes_echo_and_a_shell_never_waits(cast, open_shell, run_as, monkeypatch):
    """A key typed into a shell holds the loop's bulk runs until that shell's output is out;
    the hold is lifted by the echo (here `HOLD_MAX` is a minute, so no timer lifts it), the bulk
    run's client reads ahead less while someone types, and its transcript is whole."""
    monkeypatch.setattr(pacing, "HOLD_MAX", 60.0)
    monkeypatch.setattr(pacing, "CPU_TARGET", float("inf"))  # the hold alone, whatever the CPU
    events: list[tuple[str, object]] = []
    keystroke, echoed = pacing.LoopPacer.keystroke, pacing.LoopPacer.echoed

    def on_key(self, shell):
        events.append(("key", shell))
        keystroke(self, shell)

    def on_echo(self, shell):
        if shell in self._owed:
            events.append(("echo", shell))
        echoed(self, shell)

    monkeypatch.setattr(pacing.LoopPacer, "keystroke", on_key)
    monkeypatch.setattr(pacing.LoopPacer, "echoed", on_echo)
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
    await owner.until_line(b"42")
    assert events[:2] == [("key", shell.pk), ("echo", shell.pk)], bytes(
        owner.data
    )  # held by the key, lifted by its echo
    assert read_ahead == []  # a shell's own client never reads less
    run = await run_as(cast.operator, "seq 1 20000", mode="raw")
    await owner.type("echo $((7*6))\r")  # typed while the bulk run prints
    await owner.until_line(b"42", count=2, timeout=30)
    ended = await wait_ended(run.pk)
    assert ended.status == RunStatus.COMPLETED  # raw mode: no exit code
    assert events.count(("key", shell.pk)) == events.count(("echo", shell.pk))  # every hold lifted by an echo
    assert pacing.PACED_READ_AHEAD in read_ahead  # the bulk run read less ahead while someone typed
    rows = RunChunk.objects.filter(run=ended).order_by("seq").values_list("data", flat=True)
    transcript = b"".join(map(bytes, await database_sync_to_async(list)(rows)))
    assert transcript.split() == [str(n).encode() for n in range(1, 20001)]  # held, not cut
    await owner.type("exit\r")
    await wait_ended(shell.pk)
    await owner.communicator.disconnect()


def _pacer() -> tuple[asyncio.AbstractEventLoop, pacing.LoopPacer]:
    loop = asyncio.new_event_loop()
    return loop, pacing.LoopPacer(loop)


def _drive(loop: asyncio.AbstractEventLoop, scenario) -> None:
    """Run `scenario` (a coroutine) on the pacer's own loop, then close it."""
    try:
        loop.run_until_complete(scenario)
    finally:
        loop.close()


def test_a_hold_lasts_until_every_shell_that_typed_has_echoed_and_one_turn_more(monkeypatch):
    monkeypatch.setattr(pacing, "CPU_TARGET", float("inf"))
    loop, pacer = _pacer()

    async def scenario():
        assert not pacer.must_wait() and not pacer.active  # nobody typed: bulk output runs freely
        pacer.keystroke("a")
        pacer.keystroke("b")
        assert pacer.active and pacer.must_wait()
        pacer.echoed("a")
        assert pacer.must_wait()  # b's echo is still on its way
        pacer.echoed("b")
        assert pacer.must_wait()  # one turn more: the viewers the echo woke go first
        await asyncio.wait_for(pacer.released(), 1)
        assert not pacer.must_wait()
        pacer.echoed("b")  # a late second call changes nothing
        assert not pacer.must_wait()

    _drive(loop, scenario())


def test_an_echo_that_never_comes_holds_bulk_output_for_hold_max_only(monkeypatch):
    monkeypatch.setattr(pacing, "CPU_TARGET", float("inf"))
    monkeypatch.setattr(pacing, "HOLD_MAX", 0.05)
    loop, pacer = _pacer()

    async def scenario():
        pacer.keystroke("password-prompt")
        assert pacer.must_wait()
        await asyncio.wait_for(pacer.released(), 2)  # the hold's timer lifted it
        assert not pacer.must_wait()

    _drive(loop, scenario())


def test_keys_without_a_pause_do_not_chain_holds_past_hold_max(monkeypatch):
    """Shells typed into one after another, each before the last one's echo: bulk output waits
    for the holds begun within `HOLD_MAX` of the first, then gets its turn."""
    monkeypatch.setattr(pacing, "CPU_TARGET", float("inf"))
    monkeypatch.setattr(pacing, "HOLD_MAX", 0.05)
    loop, pacer = _pacer()
    opened: list[float] = []

    async def typist():
        for n in range(40):  # a key every 10 ms for 0.4 s, no echo ever
            pacer.keystroke(f"shell-{n % 5}")
            await asyncio.sleep(0.01)

    async def bulk():
        start = loop.time()
        while loop.time() - start < 0.5:
            if pacer.must_wait():
                await pacer.released()
                opened.append(loop.time() - start)
            await asyncio.sleep(0)

    async def scenario():
        await asyncio.gather(typist(), bulk())

    _drive(loop, scenario())
    assert len(opened) >= 2  # the gate opened again and again while the keys went on
    gaps = [b - a for a, b in zip([0.0, *opened], opened, strict=False)]
    assert max(gaps) < 0.35  # chained holds would have kept it shut for the whole 0.4 s


def test_while_someone_types_a_busy_process_makes_bulk_output_wait_a_window(monkeypatch):
    """The process's CPU over a window above `CPU_TARGET` shuts the gate for the next window,
    only while someone typed within `ACTIVE_FOR`."""
    cpu = [0.0]
    monkeypatch.setattr(pacing.time, "process_time", lambda: cpu[0])
    monkeypatch.setattr(pacing, "WINDOW", 0.02)
    loop, pacer = _pacer()

    async def scenario():
        cpu[0] += 10.0  # very busy, and nobody typed: never a wait
        assert not pacer.must_wait()
        pacer.keystroke("a")
        pacer.echoed("a")
        await pacer.released()
        assert not pacer.must_wait()  # the window that the key started is not over
        await asyncio.sleep(pacing.WINDOW * 1.5)
        cpu[0] += pacing.WINDOW  # a whole core over the window
        assert pacer.must_wait()
        started = loop.time()
        await asyncio.wait_for(pacer.released(), 2)
        assert loop.time() - started < 1  # it opens at the window's end, not at the next key
        assert not pacer.must_wait()
        await asyncio.sleep(pacing.WINDOW * 1.5)  # an idle window (no CPU used): no wait
        assert not pacer.must_wait()

    _drive(loop, scenario())
    loop, pacer = _pacer()
    monkeypatch.setattr(pacing, "ACTIVE_FOR", 0.0)

    async def typed_long_ago():
        pacer.keystroke("a")
        pacer.echoed("a")
        await pacer.released()
        await asyncio.sleep(pacing.WINDOW * 1.5)
        cpu[0] += 10.0
        assert not pacer.active and not pacer.must_wait()

    _drive(loop, typed_long_ago())


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
