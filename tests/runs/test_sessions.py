"""Interactive shells through the full ASGI application, with moto's server and the SSM emulator:
who may type (the server decides), bounded frames, the keyboard handed and taken back, the
ends with their reasons, and the recording's events."""

from __future__ import annotations

import asyncio
import base64
import json
import re

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from ecsportal.audit.models import AuditEvent
from ecsportal.runs import interactive
from ecsportal.runs.models import Run, RunStatus, SessionEvent
from ecsportal.runs.selectors import run_transcript_bytes
from ecsportal.runs.sessions import CLOSE_MALFORMED, CLOSE_TOO_LARGE
from tests.runs.lab import RUNS_CLUSTER, RUNS_REGION, connect, wait_ended

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture
def open_shell(runs_lab, lab_task, fast_runs):
    from ecsportal.runs import dispatcher

    async def _open(user, **options):
        dispatcher.bind_loop(asyncio.get_running_loop())
        arn = await sync_to_async(lab_task)()
        return await sync_to_async(interactive.shell_open)(
            actor=user,
            account_pk=runs_lab.pk,
            region=RUNS_REGION,
            cluster=RUNS_CLUSTER,
            task=arn,
            container="app",
            **options,
        )

    return _open


class Screen:
    """One socket's view: output bytes, the last session state, refusals and notices."""

    def __init__(self, communicator) -> None:
        self.communicator = communicator
        self.data = bytearray()
        self.state: dict | None = None
        self.refused: list[str] = []
        self.notices: list[str] = []
        self.statuses: list[dict] = []

    async def read_once(self, timeout: float = 20) -> dict:
        message = json.loads(await self.communicator.receive_from(timeout=timeout))
        kind = message["type"]
        if kind == "output":
            self.data.extend(base64.b64decode(message["data"]))
        elif kind == "session":
            self.state = message
        elif kind == "refused":
            self.refused.append(message["text"])
        elif kind == "notice":
            self.notices.append(message["text"])
        elif kind == "status":
            self.statuses.append(message)
        return message

    async def until(self, test, timeout: float = 20) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not test(self):
            left = deadline - loop.time()
            assert left > 0, (
                f"not seen in time; output so far: {bytes(self.data)[-400:]!r}, state {self.state}, {self.statuses}"
            )
            try:
                await self.read_once(timeout=left)
            except TimeoutError:
                raise AssertionError(
                    f"not seen in time; output so far: {bytes(self.data)[-400:]!r}, state {self.state}, {self.statuses}"
                ) from None

    async def until_output(self, needle: bytes, timeout: float = 20) -> None:
        await self.until(lambda s: needle in s.data, timeout)

    async def until_line(self, line: bytes, count: int = 1, timeout: float = 20) -> None:
        """Until the terminal shows `line` as a whole line `count` times: a short answer such as
        b"42" is also found in the prompt, whose working directory has a random name. (bash ends
        bracketed paste before the answer: "\\r\\n\\x1b[?2004l\\r42\\r\\n".)"""
        whole = re.compile(rb"[\r\n]" + re.escape(line) + rb"\r\n")
        await self.until(lambda s: len(whole.findall(s.data)) >= count, timeout)

    async def send(self, **message) -> None:
        await self.communicator.send_to(text_data=json.dumps(message))

    async def type(self, text: str) -> None:
        await self.send(type="input", data=text)


async def _join(run: Run, user) -> Screen:
    communicator, connected, code = await connect(f"/ws/sessions/{run.pk}/", user)
    assert connected, code
    screen = Screen(communicator)
    await screen.until(lambda s: s.state is not None and user.username in [p["username"] for p in s.state["people"]])
    return screen


async def _running(run: Run) -> None:
    for _ in range(400):
        status = (await database_sync_to_async(Run.objects.get)(pk=run.pk)).status
        if status == RunStatus.RUNNING:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the shell did not start")


async def test_the_owner_types_and_sees_the_answer_and_exit_ends_the_shell(cast, open_shell):
    run = await open_shell(cast.operator)
    await _running(run)
    owner = await _join(run, cast.operator)
    assert owner.state["holder"] == "operator" and owner.state["owner"] == "operator"
    await owner.type("echo $((6*7))\r")
    await owner.until_line(b"42")
    await owner.type("exit\r")
    ended = await wait_ended(run.pk)
    assert ended.status == RunStatus.COMPLETED
    assert "shell exited" in ended.end_reason
    transcript = await sync_to_async(run_transcript_bytes)(run=ended)
    assert b"42" in transcript
    await owner.communicator.disconnect()


async def test_an_observer_cannot_type_whatever_its_page_sends(cast, open_shell):
    run = await open_shell(cast.operator)
    await _running(run)
    owner = await _join(run, cast.operator)
    watcher = await _join(run, cast.viewer)
    await owner.until(lambda s: "viewer" in [p["username"] for p in s.state["people"]])
    # A forged frame: the page of a viewer sending input anyway.
    await watcher.type("echo FORGED-$((40+2))\r")
    await watcher.until(lambda s: bool(s.refused))
    assert "operator holds the keyboard" in watcher.refused[0]
    # An operator who is only watching is refused too: the keyboard, not the role, decides.
    await owner.type("echo OWNER-$((1+1))\r")
    await owner.until_output(b"OWNER-2")
    await watcher.until_output(b"OWNER-2")  # the observer sees the output live
    assert b"FORGED" not in owner.data and b"FORGED" not in watcher.data
    await owner.type("exit\r")
    ended = await wait_ended(run.pk)
    assert b"FORGED" not in await sync_to_async(run_transcript_bytes)(run=ended)
    for screen in (owner, watcher):
        await screen.communicator.disconnect()


async def _sessions_heard(screen: Screen, seconds: float) -> list[dict]:
    """The session states a socket receives over `seconds` (any other message is kept as usual)."""
    loop = asyncio.get_running_loop()
    deadline, heard = loop.time() + seconds, []
    while (left := deadline - loop.time()) > 0:
        # receive_nothing, not a receive that times out: that would cancel the application.
        if await screen.communicator.receive_nothing(timeout=left, interval=0.01):
            break
        message = await screen.read_once()
        if message["type"] == "session":
            heard.append(message)
    return heard


async def test_a_page_that_asks_for_the_session_state_gets_it_alone_and_not_too_often(cast, open_shell, monkeypatch):
    """The page's script can load after the state sent when its socket opened (run-terminal.js
    opens the socket first): it asks, and only that socket is answered."""
    from ecsportal.runs import sessions

    monkeypatch.setattr(sessions, "ASK_EVERY", 2.0)  # wide enough that a busy machine's answer fits in it
    run = await open_shell(cast.operator)
    await _running(run)
    owner = await _join(run, cast.operator)
    watcher = await _join(run, cast.viewer)
    await owner.until(lambda s: "viewer" in [p["username"] for p in s.state["people"]])
    await _sessions_heard(watcher, 0.3)  # anything already on its way
    asked = asyncio.get_running_loop().time()
    await watcher.communicator.send_to(text_data=json.dumps({"type": "session"}))
    await watcher.communicator.send_to(text_data=json.dumps({"type": "session"}))  # at once again: not answered
    heard = await _sessions_heard(watcher, 0.8)
    assert len(heard) == 1, heard
    assert heard[0]["you"] == "viewer" and heard[0]["holder"] == "operator"
    assert sorted(p["username"] for p in heard[0]["people"]) == ["operator", "viewer"]
    assert await _sessions_heard(owner, 0.3) == []  # the others' pages are not sent it
    await asyncio.sleep(max(0.0, asked + 2.2 - asyncio.get_running_loop().time()))
    await watcher.communicator.send_to(text_data=json.dumps({"type": "session"}))  # once the interval passed: answered
    assert len(await _sessions_heard(watcher, 1.0)) == 1
    await sync_to_async(interactive.shell_end)(run_pk=run.pk, reason="Test over.")
    await wait_ended(run.pk)
    for screen in (owner, watcher):
        await screen.communicator.disconnect()


async def test_a_state_request_that_meets_a_database_error_keeps_the_socket_and_is_answered_later(
    cast, open_shell, monkeypatch
):
    from django.db import OperationalError

    from ecsportal.runs import sessions

    monkeypatch.setattr(sessions, "ASK_EVERY", 0.0)
    run = await open_shell(cast.operator)
    await _running(run)
    owner = await _join(run, cast.operator)
    read_state, failing = interactive.session_state, [True]

    def flaky(run_pk):
        if failing[0]:
            raise OperationalError("the database is restarting")
        return read_state(run_pk)

    monkeypatch.setattr(interactive, "session_state", flaky)
    await _sessions_heard(owner, 0.3)
    await owner.send(type="session")
    assert await _sessions_heard(owner, 0.5) == []  # not answered, and the socket stays open
    failing[0] = False
    await owner.send(type="session")
    heard = await _sessions_heard(owner, 2.0)
    assert len(heard) == 1 and heard[0]["holder"] == "operator"
    await owner.type("echo still-$((2+3))\r")
    await owner.until_line(b"still-5")
    await sync_to_async(interactive.shell_end)(run_pk=run.pk, reason="Test over.")
    await wait_ended(run.pk)
    await owner.communicator.disconnect()


async def test_the_owner_hands_the_keyboard_to_an_operator_and_takes_it_back(cast, open_shell):
    run = await open_shell(cast.operator)
    await _running(run)
    owner = await _join(run, cast.operator)
    second = await _join(run, cast.approver)
    watcher = await _join(run, cast.viewer)
    # Not to a viewer, and only by the owner.
    await owner.send(type="keyboard", to="viewer")
    await owner.until(lambda s: bool(s.refused))
    assert "not an operator" in owner.refused[-1]
    await second.send(type="keyboard", to="approver")
    await second.until(lambda s: bool(s.refused))
    assert "Only operator" in second.refused[-1]
    await owner.send(type="keyboard", to="approver")
    await watcher.until(lambda s: s.state["holder"] == "approver")
    await second.until(lambda s: s.state["holder"] == "approver")
    await second.type("echo HANDED-$((3*3))\r")
    await watcher.until_output(b"HANDED-9")
    owner.refused.clear()
    await owner.type("echo OWNER\r")  # the owner no longer holds it
    await owner.until(lambda s: bool(s.refused))
    await owner.send(type="keyboard", to=None)
    await second.until(lambda s: s.state["holder"] == "operator")
    second.refused.clear()
    await second.type("echo LATE\r")
    await second.until(lambda s: bool(s.refused))
    await owner.type("exit\r")
    ended = await wait_ended(run.pk)
    # The recording names who typed when.
    markers = await database_sync_to_async(list)(
        SessionEvent.objects.filter(run=ended, kind="m").values_list("data", flat=True)
    )
    assert "approver typed" in markers and "operator typed" in markers
    actions = await database_sync_to_async(list)(
        AuditEvent.objects.filter(details__run=run.pk).values_list("action", flat=True)
    )
    assert "shell.opened" in actions and "shell.keyboard_handed" in actions and "shell.joined" in actions
    # The end is audited with its reason in words; each person leaving, once, as they go.
    ((end_details,),) = await database_sync_to_async(list)(
        AuditEvent.objects.filter(action="run.ended", details__run=run.pk).values_list("details")
    )
    assert end_details["end_reason"].startswith("The shell ended: its shell exited")
    for screen in (owner, second, watcher):
        await screen.communicator.disconnect()
    left = await database_sync_to_async(list)(
        AuditEvent.objects.filter(action="shell.left", details__run=run.pk).values_list("actor_username", flat=True)
    )
    assert sorted(left) == ["approver", "operator", "viewer"]


async def test_malformed_and_oversized_frames_close_the_socket_and_reach_nothing(cast, open_shell, settings):
    settings.ECSPORTAL_SHELL_INPUT_FRAME_BYTES = 1024
    run = await open_shell(cast.operator)
    await _running(run)
    for frame, code in (
        ("not json", CLOSE_MALFORMED),
        (json.dumps({"type": "input", "data": 42}), CLOSE_MALFORMED),
        (json.dumps({"type": "resize", "cols": "80", "rows": 24}), CLOSE_MALFORMED),
        (json.dumps({"type": "resize", "cols": 100000, "rows": 24}), CLOSE_MALFORMED),
        (json.dumps({"type": "launch"}), CLOSE_MALFORMED),
        (json.dumps({"type": "input", "data": "echo BIG" + "x" * 2000 + "\r"}), CLOSE_TOO_LARGE),
        ("[" * 20000, CLOSE_TOO_LARGE),
    ):
        screen = await _join(run, cast.operator)
        await screen.communicator.send_to(text_data=frame)
        while True:
            message = await screen.communicator.receive_output(timeout=10)
            if message["type"] == "websocket.close":
                break
        assert message["code"] == code, frame[:40]
    owner = await _join(run, cast.operator)
    await owner.type("echo STILL-$((2+3))\r")
    await owner.until_output(b"STILL-5")
    assert b"BIG" not in owner.data
    await owner.type("exit\r")
    await wait_ended(run.pk)
    await owner.communicator.disconnect()


async def test_resize_reaches_the_terminal_and_the_recording(cast, open_shell):
    run = await open_shell(cast.operator)
    await _running(run)
    owner = await _join(run, cast.operator)
    await owner.send(type="resize", cols=91, rows=27)
    await owner.type("stty size\r")
    await owner.until_line(b"27 91")
    await owner.type("exit\r")
    ended = await wait_ended(run.pk)
    resizes = await database_sync_to_async(list)(
        SessionEvent.objects.filter(run=ended, kind="r").values_list("data", flat=True)
    )
    assert "91x27" in resizes
    await owner.communicator.disconnect()


async def test_ctrl_c_interrupts_the_command_and_gives_the_prompt_back(cast, open_shell):
    run = await open_shell(cast.operator)
    await _running(run)
    owner = await _join(run, cast.operator)
    await owner.type("sleep 100; echo SLEPT\r")
    await asyncio.sleep(0.5)  # let sleep start: the byte must interrupt it, not the line being typed
    await owner.type("\x03")
    await owner.type("echo AFTER-$((5+5))\r")
    await owner.until_output(b"AFTER-10", timeout=15)
    assert b"\nSLEPT" not in owner.data  # the typed line is echoed; its output never came
    await owner.type("exit\r")
    await wait_ended(run.pk)
    await owner.communicator.disconnect()


async def test_the_idle_limit_warns_then_ends_the_shell_in_words(cast, open_shell, settings, monkeypatch):
    from ecsportal.runs import shellinput

    monkeypatch.setattr(shellinput, "WARN_BEFORE", 1.0)
    settings.ECSPORTAL_SHELL_IDLE_SECONDS = 2.0
    run = await open_shell(cast.operator)
    await _running(run)
    owner = await _join(run, cast.operator)
    await owner.until(lambda s: bool(s.notices), timeout=20)
    assert "ends in" in owner.notices[0]
    ended = await wait_ended(run.pk)
    assert ended.status == RunStatus.TIMED_OUT
    assert ended.end_reason == "No input for 2 seconds: the shell's idle limit closed the session."
    await owner.communicator.disconnect()


async def test_access_revoked_ends_the_owners_shell_with_that_reason(cast, open_shell):
    run = await open_shell(cast.operator)
    await _running(run)
    owner = await _join(run, cast.operator)
    ended_pks = await sync_to_async(interactive.shell_end_for_user)(user_pk=cast.operator.pk)
    assert ended_pks == [run.pk]
    ended = await wait_ended(run.pk)
    assert ended.end_reason == "Access revoked."
    await owner.until(lambda s: any(st["finished"] for st in s.statuses))
    owner.refused.clear()
    await owner.type("echo AFTER\r")
    await owner.until(lambda s: bool(s.refused))
    assert "not running" in owner.refused[0]
    await owner.communicator.disconnect()


async def test_a_viewer_cannot_open_a_shell_and_a_plain_run_has_no_session_socket(cast, open_shell, run_as):
    from ecsportal.runs.services import RunRefused

    with pytest.raises(RunRefused):
        await open_shell(cast.viewer)
    run = await run_as(cast.operator, "echo hi")
    _, connected, code = await connect(f"/ws/sessions/{run.pk}/", cast.operator)
    assert not connected and code == 4403
    await wait_ended(run.pk)


@pytest.fixture
def redis_worker_mode(fast_runs):
    """Worker mode over a Redis of the test's own: the runner is a runs worker's, reached only
    through the channel layer, as in a deployment (here in the same process)."""
    from tests.faults.servers import running_redis

    with running_redis() as url:
        fast_runs.ECSPORTAL_RUNNER_MODE = "worker"
        fast_runs.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "ecsportal.redislayer.RedisChannelLayer",
                "CONFIG": {"hosts": [{"address": url, "socket_timeout": 15}], "prefix": "shellcore-test"},
            }
        }
        yield url


async def test_input_reaches_a_shell_run_by_a_worker_over_redis(cast, open_shell, redis_worker_mode):
    from channels.layers import get_channel_layer
    from channels.routing import ChannelNameRouter

    from ecsportal.runs import dispatcher
    from ecsportal.runs.worker import RunsWorker

    layer = get_channel_layer()
    assert type(layer).__name__ == "RedisChannelLayer"
    worker = RunsWorker(
        application=ChannelNameRouter({dispatcher.RUNS_CHANNEL: dispatcher.RunWorkerConsumer.as_asgi()}),
        channels=[dispatcher.RUNS_CHANNEL],
        channel_layer=layer,
    )
    listening = asyncio.create_task(worker.listener(dispatcher.RUNS_CHANNEL))
    try:
        run = await open_shell(cast.operator)
        await _running(run)
        owner = await _join(run, cast.operator)
        watcher = await _join(run, cast.viewer)
        await watcher.type("echo FORGED\r")
        await owner.type("echo OVER-REDIS-$((20+22))\r")
        await watcher.until_output(b"OVER-REDIS-42")
        await owner.type("exit\r")
        ended = await wait_ended(run.pk)
        assert ended.status == RunStatus.COMPLETED
        assert b"FORGED" not in await sync_to_async(run_transcript_bytes)(run=ended)
        for screen in (owner, watcher):
            await screen.communicator.disconnect()
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)


async def test_a_moderated_shell_takes_input_only_while_an_approver_watches(cast, open_shell, monkeypatch):
    from ecsportal.shells.policy import ShellPermit

    def moderated(user, account, **target):
        return ShellPermit(
            allowed=True,
            reason="",
            request_url=None,
            moderated=True,
            record_input=True,
            shell_command="/bin/sh",
            expires_at=None,
        )

    monkeypatch.setattr(interactive, "shell_permit", moderated)
    run = await open_shell(cast.operator)
    await _running(run)
    owner = await _join(run, cast.operator)
    assert "no approver" in owner.state["paused"]
    await owner.type("echo EARLY-$((1+1))\r")
    await owner.until(lambda s: bool(s.refused))
    assert "moderated" in owner.refused[0]
    approver = await _join(run, cast.approver)
    await owner.until(lambda s: s.state["paused"] == "")
    await owner.type("echo WATCHED-$((2+2))\r")
    await approver.until_output(b"WATCHED-4")
    await approver.communicator.disconnect()
    await owner.until(lambda s: bool(s.state["paused"]))  # the last approver left: paused again, and said
    owner.refused.clear()
    await asyncio.sleep(1.1)  # the same refusal is said at most once a second
    await owner.type("exit\r")
    await owner.until(lambda s: bool(s.refused))
    assert b"EARLY-2" not in owner.data
    # Input is recorded where the policy says so (the typed bytes, with who typed them).
    typed = await database_sync_to_async(list)(
        SessionEvent.objects.filter(run=run, kind="i").values_list("data", flat=True)
    )
    assert "echo WATCHED-$((2+2))\r" in typed and not any("EARLY" in t for t in typed)
    await sync_to_async(interactive.shell_end)(run_pk=run.pk, reason="Test over.")
    assert (await wait_ended(run.pk)).end_reason == "Test over."
    await owner.communicator.disconnect()


async def test_a_dead_processs_approver_stops_counting_after_its_seats_lease(cast, open_shell, monkeypatch, settings):
    """A process killed without a goodbye (SIGKILL, the OOM killer) leaves its seats behind: a
    moderated shell must not go on taking input because a dead approver's seat still "watches".
    The dead process is a seat row nobody renews; the owner's process renews its own seat and
    sweeps the ghost once the lease runs out (tests/test_multiprocess_seats.py kills a real one)."""
    from ecsportal.runs.models import SessionSeat
    from ecsportal.shells.policy import ShellPermit

    settings.ECSPORTAL_SHELL_SEAT_LEASE_SECONDS = 1.5  # renewed every 0.5 s
    monkeypatch.setattr(
        interactive,
        "shell_permit",
        lambda user, account, **target: ShellPermit(
            allowed=True, reason="", request_url=None, moderated=True, record_input=False,
            shell_command="/bin/sh", expires_at=None,
        ),
    )  # fmt: skip
    run = await open_shell(cast.operator)
    await _running(run)
    await sync_to_async(interactive.seat_take)(run=run, user=cast.approver, channel_name="daphne-dead!ghost")
    owner = await _join(run, cast.operator)
    assert owner.state["paused"] == "" and "approver" in [p["username"] for p in owner.state["people"]]
    await owner.type("echo GHOSTED-$((2+3))\r")
    await owner.until_output(b"GHOSTED-5")

    # Nobody renews the dead process's seat: within a lease and a round, input pauses, and said.
    await owner.until(lambda s: bool(s.state["paused"]), timeout=30)
    assert [p["username"] for p in owner.state["people"]] == [cast.operator.username]
    assert not await database_sync_to_async(SessionSeat.objects.filter(channel_name="daphne-dead!ghost").exists)()
    left = await database_sync_to_async(list)(
        AuditEvent.objects.filter(action="shell.left", actor=cast.approver).values_list("details", flat=True)
    )
    assert left == [{"run": run.pk, "lost": True}]
    owner.refused.clear()
    await owner.type("echo LATE-$((3+3))\r")
    await owner.until(lambda s: bool(s.refused))
    assert "moderated" in owner.refused[0]

    # The owner's own seat outlived several leases (its process renews it); one swept while its
    # process stalled is taken again at the next round.
    await database_sync_to_async(SessionSeat.objects.filter(user=cast.operator).delete)()
    for _ in range(200):
        if await database_sync_to_async(SessionSeat.objects.filter(run=run, user=cast.operator).exists)():
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the live socket's seat was not taken again")
    await asyncio.sleep(0.5)
    assert b"LATE-6" not in owner.data
    await sync_to_async(interactive.shell_end)(run_pk=run.pk, reason="Test over.")
    assert (await wait_ended(run.pk)).end_reason == "Test over."
    await owner.communicator.disconnect()


async def test_the_accounts_auto_shell_is_bash_when_the_image_has_it_and_its_limits_apply(cast, open_shell, runs_lab):
    """The account's defaults: "auto" runs bash where the image has it (the emulator's host
    does); its idle and maximum minutes bound the session under the deployment's ceilings."""
    runs_lab.shell_command = "auto"
    runs_lab.shell_idle_minutes = 5
    runs_lab.shell_max_minutes = 2
    await database_sync_to_async(runs_lab.save)()
    run = await open_shell(cast.operator)
    assert run.command == interactive.AUTO_SHELL and run.command_label == "bash, else sh (automatic)"
    assert (run.time_limit_seconds, run.shell_idle_seconds) == (120, 300)
    await _running(run)
    owner = await _join(run, cast.operator)
    await owner.type('echo "shell=${BASH_VERSION:+bash}"\r')
    await owner.until_output(b"shell=bash")
    await sync_to_async(interactive.shell_end)(run_pk=run.pk, reason="Done.")
    await wait_ended(run.pk)
    await owner.communicator.disconnect()


async def test_a_shell_ends_access_expired_when_its_grant_ends(cast, open_shell, runs_lab, settings):
    from datetime import timedelta

    from django.utils import timezone

    from ecsportal.shells.policy import ShellPermit

    settings.ECSPORTAL_SOCKET_RECHECK_SECONDS = 0.5
    ends = timezone.now() + timedelta(seconds=4)
    granted = ShellPermit(
        allowed=True, reason="", request_url=None, moderated=False, record_input=False,
        shell_command="/bin/sh", expires_at=ends,
    )  # fmt: skip
    original = interactive.shell_permit
    interactive.shell_permit = lambda *a, **k: granted  # the grant's terms; the grant flow is tested in tests/shells
    try:
        run = await open_shell(cast.operator)
    finally:
        interactive.shell_permit = original
    assert run.access_expires_at == ends and run.time_limit_seconds > 4  # the time limit is the backstop
    await _running(run)
    ended = await wait_ended(run.pk, timeout=60)
    assert ended.status == RunStatus.TIMED_OUT
    assert ended.end_reason.startswith("Access expired: the shell access granted until")


async def test_removing_the_owners_membership_ends_the_shell_even_with_no_page_open(
    cast, open_shell, runs_lab, settings
):
    from ecsportal.accounts.models import Membership

    settings.ECSPORTAL_SOCKET_RECHECK_SECONDS = 0.5
    run = await open_shell(cast.operator)
    await _running(run)
    await database_sync_to_async(Membership.objects.filter(user=cast.operator, account=runs_lab).delete)()
    ended = await wait_ended(run.pk, timeout=60)
    assert ended.status == RunStatus.ERROR
    assert ended.end_reason == f"Access revoked: operator is no longer an operator on {runs_lab.name}."


async def test_the_owners_socket_revoked_ends_the_shell_at_once(cast, open_shell, runs_lab, settings):
    """The membership's removal reaches the owner's socket (a broadcast), whose revocation ends
    the shell "Access revoked." at once; the runner's own watch is slowed so it cannot be first."""
    from ecsportal.accounts.models import Membership

    settings.ECSPORTAL_SOCKET_RECHECK_SECONDS = 120
    run = await open_shell(cast.operator)
    await _running(run)
    owner = await _join(run, cast.operator)
    await database_sync_to_async(Membership.objects.filter(user=cast.operator, account=runs_lab).delete)()
    ended = await wait_ended(run.pk, timeout=60)
    assert (ended.status, ended.end_reason) == (RunStatus.ERROR, "Access revoked.")
    await owner.communicator.disconnect()
