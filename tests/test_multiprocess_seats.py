"""Seats of a dead process, for real: daphne A and daphne B and a runs worker on one PostgreSQL
database and one Redis channel prefix (tests/deployment.py). The operator's shell on a
moderated account takes input on A while an approver watches from B; B is then killed with
SIGKILL (no goodbye, its sockets' seats stay in the database). Within the seat lease and a
round of A's keeper, the owner's page is told input is paused, the participants no longer list
the approver, and the owner's keys are refused. Runs only under CI=true, like
tests/test_multiprocess.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import time
from collections.abc import Iterator

import pytest

from tests.deployment import Deployment, login, open_shell
from tests.test_multiprocess import _needs_the_real_services

LEASE_SECONDS = 3  # ECSPORTAL_SHELL_SEAT_LEASE_SECONDS in the processes: renewed every second


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    database_url, redis_url, prefix = _needs_the_real_services()
    deployment = Deployment.start(
        workdir=tmp_path_factory.mktemp("seats"),
        database_url=database_url,
        redis_url=redis_url,
        channel_prefix=f"{prefix}-st{os.getpid()}",
        settings={"ECSPORTAL_SHELL_SEAT_LEASE_SECONDS": str(LEASE_SECONDS)},
    )
    with deployment.serving(worker="runworker"):
        yield deployment


class Page:
    """One session socket, read as the shell page reads it: output, the session's state, refusals."""

    def __init__(self, socket_) -> None:
        self.socket = socket_
        self.data = bytearray()
        self.state: dict = {}
        self.refused: list[str] = []
        self.status: dict = {}

    async def until(self, test, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not test(self):
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"not seen in time: state {self.state}, output {bytes(self.data)[-300:]!r}")
            try:
                message = json.loads(await asyncio.wait_for(self.socket.recv(), left))
            except TimeoutError:
                raise AssertionError(
                    f"not seen in time: {self.status}, {self.state}, {bytes(self.data)[-300:]!r}"
                ) from None
            if message["type"] == "status":
                self.status = message
            elif message["type"] == "output":
                self.data.extend(base64.b64decode(message["data"]))
            elif message["type"] == "session":
                self.state = message
            elif message["type"] == "refused":
                self.refused.append(message["text"])

    def people(self) -> list[str]:
        return [p["username"] for p in self.state.get("people", [])]

    async def type(self, text: str) -> None:
        await self.socket.send(json.dumps({"type": "input", "data": text}))


async def _page(deployment: Deployment, name: str, cookie: str, run_pk: int) -> Page:
    from websockets.asyncio.client import connect

    socket_ = await connect(
        f"{deployment.ws(name)}/ws/sessions/{run_pk}/",
        origin=deployment.http(name),
        additional_headers={"Cookie": cookie},
        open_timeout=30,
        proxy=None,
    )
    return Page(socket_)


def _open_shell(deployment: Deployment, session, target) -> int:
    return open_shell(session, deployment.http("daphne-a"), target)


def test_an_approver_on_a_killed_process_stops_counting_and_input_pauses(deployment):
    target = deployment.exec_target()
    deployment.sql(
        "UPDATE accounts_awsaccount SET shell_moderated = true WHERE id = %s RETURNING id", (target.account,)
    )
    operator = login(deployment.http("daphne-a"), "operator")
    approver = login(deployment.http("daphne-b"), "approver")
    run_pk = _open_shell(deployment, operator, target)
    timings: dict[str, float] = {}

    async def scenario() -> Page:
        owner = await _page(deployment, "daphne-a", f"sessionid={operator.cookies['sessionid']}", run_pk)
        await owner.until(
            lambda p: p.status.get("status") == "running" and "no approver" in p.state.get("paused", ""), 90
        )
        watcher = await _page(deployment, "daphne-b", f"sessionid={approver.cookies['sessionid']}", run_pk)
        await owner.until(lambda p: "approver" in p.people() and p.state["paused"] == "", 60)
        await owner.type("echo $((6*7))\r")
        await owner.until(lambda p: re.search(rb"\r42\r\n", p.data) is not None, 60)

        deployment.kill("daphne-b")  # SIGKILL: B's sockets never say goodbye, its seats stay
        killed = time.monotonic()
        ((seats,),) = deployment.sql(
            "SELECT count(*) FROM runs_sessionseat s JOIN auth_user u ON u.id = s.user_id "
            "WHERE s.run_id = %s AND u.username = 'approver'",
            (run_pk,),
        )
        assert seats == 1  # the ghost is there: nothing but its lease ends it
        await owner.until(lambda p: bool(p.state["paused"]), LEASE_SECONDS + 60)  # margin: a loaded machine
        timings["paused"] = time.monotonic() - killed
        assert owner.people() == ["operator"]
        assert "moderated" in owner.state["paused"]
        owner.refused.clear()
        await owner.type("echo AFTER-$((2+3))\r")
        await owner.until(lambda p: bool(p.refused), 30)
        # The home page lists who is in the shell: the owner only, no ghost.
        home = await asyncio.to_thread(operator.get, f"{deployment.http('daphne-a')}/", timeout=30)
        row = re.search(rf'<tr data-run="{run_pk}">(.*?)</tr>', home.text, re.DOTALL)
        assert row and "here: <bdi>operator</bdi></td>" in row.group(1), row
        assert b"AFTER-5" not in owner.data
        del watcher
        return owner

    try:
        owner = asyncio.run(scenario())
    finally:
        deployment.sql(
            "UPDATE accounts_awsaccount SET shell_moderated = false WHERE id = %s RETURNING id", (target.account,)
        )
    print(f"run {run_pk}: input paused {timings.get('paused', -1):.1f} s after the approver's process was killed")
    assert "moderated" in owner.refused[0]
    assert deployment.sql("SELECT count(*) FROM runs_sessionseat WHERE run_id = %s", (run_pk,)) == [(1,)]
    left = deployment.sql(
        "SELECT details FROM audit_auditevent a JOIN auth_user u ON u.id = a.actor_id "
        "WHERE a.action = 'shell.left' AND u.username = 'approver'"
    )
    assert [row[0] for row in left] == [{"run": run_pk, "lost": True}]
