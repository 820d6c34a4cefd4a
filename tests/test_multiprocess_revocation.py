"""Revocation in worker mode, for real: daphne A and daphne B on one PostgreSQL database and one
Redis channel prefix (tests/deployment.py). A user's sockets open on both processes close with
4003 ("access revoked": daphne 4 sends the close code without the reason text, so pages go by
the code) when an admin removes their memberships through the portal on A (the
broadcast over Redis), and when their role is lowered behind the portal's back in SQL (each
process's sweep). Runs only under CI=true, like tests/test_multiprocess.py.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import pytest

from tests.deployment import Deployment, login
from tests.test_multiprocess import _needs_the_real_services

ACCESS_REVOKED = 4003


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    database_url, redis_url, prefix = _needs_the_real_services()
    deployment = Deployment.start(
        workdir=tmp_path_factory.mktemp("revocation"),
        database_url=database_url,
        redis_url=redis_url,
        channel_prefix=f"{prefix}-rv{os.getpid()}",
        settings={},  # the default re-check round (3 s): what a deployment gets
    )
    with deployment.serving(worker="runworker"):
        yield deployment


async def _inbox(deployment: Deployment, name: str, cookie: str):
    from websockets.asyncio.client import connect

    return await connect(
        f"{deployment.ws(name)}/ws/approvals/inbox/",
        origin=deployment.http(name),
        additional_headers={"Cookie": cookie},
        open_timeout=30,
        proxy=None,
    )


async def _closed_after(socket_, since: float, timeout: float = 60) -> tuple[int, str, float]:
    from websockets.exceptions import ConnectionClosed

    try:
        while True:
            await asyncio.wait_for(socket_.recv(), timeout)
    except ConnectionClosed as closed:
        return closed.rcvd.code, closed.rcvd.reason, time.monotonic() - since


def _sockets_of(deployment: Deployment, username: str, change) -> list[tuple[int, str, float]]:
    session = login(deployment.http("daphne-b"), username)
    cookie = f"sessionid={session.cookies['sessionid']}"

    async def scenario():
        sockets = [await _inbox(deployment, "daphne-a", cookie), await _inbox(deployment, "daphne-b", cookie)]
        await asyncio.sleep(0.5)  # both joined their groups
        since = time.monotonic()
        await asyncio.to_thread(change)
        return await asyncio.gather(*(_closed_after(s, since) for s in sockets))

    return asyncio.run(scenario())


def test_memberships_removed_through_the_portal_on_a_close_the_users_sockets_on_a_and_b(deployment):
    admin = login(deployment.http("daphne-a"), "admin")
    memberships = deployment.sql(
        "SELECT m.account_id, m.id FROM accounts_membership m JOIN auth_user u ON u.id = m.user_id "
        "WHERE u.username = 'approver'"
    )
    assert memberships

    def remove_all():
        for account_pk, membership_pk in memberships:
            answer = admin.post(
                f"{deployment.http('daphne-a')}/accounts/{account_pk}/members/{membership_pk}/remove/",
                data={"csrfmiddlewaretoken": admin.cookies["csrftoken"]},
                headers={"Referer": f"{deployment.http('daphne-a')}/accounts/{account_pk}/"},
                timeout=30,
            )
            answer.raise_for_status()

    closed = _sockets_of(deployment, "approver", remove_all)
    print("broadcast: closed after " + ", ".join(f"{seconds:.2f} s" for *_, seconds in closed))
    assert [code for code, _, _ in closed] == [ACCESS_REVOKED] * 2  # daphne sends the code, not the reason


def test_a_role_lowered_in_sql_is_caught_by_each_processs_sweep(deployment):
    def lower_in_sql():
        deployment.sql(
            "UPDATE accounts_membership SET role = 20 WHERE user_id = "
            "(SELECT id FROM auth_user WHERE username = 'approver2') RETURNING id"
        )

    closed = _sockets_of(deployment, "approver2", lower_in_sql)
    print("sweep: closed after " + ", ".join(f"{seconds:.2f} s" for *_, seconds in closed))
    assert [code for code, _, _ in closed] == [ACCESS_REVOKED] * 2  # daphne sends the code, not the reason
