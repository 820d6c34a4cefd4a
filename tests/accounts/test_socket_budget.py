"""Open sockets per user (ECSPORTAL_SOCKETS_PER_USER): the portal's own consumers through the
whole ASGI application, and the Redis ledger against a redis-server this module starts."""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from ecsportal.accounts import socket_budget
from ecsportal.accounts.sockets import CLOSE_TOO_MANY_SOCKETS
from ecsportal.runs.models import RunStatus
from tests.cookies import logged_in
from tests.deployment import free_port
from tests.faults.servers import running_redis
from tests.runs.lab import stored_run


async def _open(path: str, cookie: str) -> tuple[WebsocketCommunicator, int | None]:
    """Connect; the close code if the socket was closed right after its handshake, else None."""
    from ecsportal.asgi import application

    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie.encode())]
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected, path
    while not await communicator.receive_nothing(timeout=0.3):  # (a timed-out receive_output ends the app)
        message = await communicator.receive_output()
        if message["type"] == "websocket.close":
            return communicator, message.get("code")
    return communicator, None


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_user_past_the_limit_gets_a_socket_closed_with_its_own_code_on_every_route(cast, settings):
    settings.ECSPORTAL_SOCKETS_PER_USER = 2
    run = await database_sync_to_async(stored_run)(
        account=cast.prod, requested_by=cast.operator, status=RunStatus.SUCCEEDED, ended_at=timezone.now()
    )
    _, cookie = await database_sync_to_async(logged_in)(cast.approver)
    _, other_cookie = await database_sync_to_async(logged_in)(cast.approver2)
    inbox, code = await _open("/ws/approvals/inbox/", cookie)
    assert code is None
    watching, code = await _open(f"/ws/runs/{run.pk}/", cookie)
    assert code is None
    for path in ("/ws/approvals/inbox/", f"/ws/runs/{run.pk}/"):
        refused, code = await _open(path, cookie)
        assert code == CLOSE_TOO_MANY_SOCKETS, path
        await refused.disconnect()
    others, code = await _open("/ws/approvals/inbox/", other_cookie)  # another user's budget is their own
    assert code is None
    await inbox.disconnect()  # a closed tab gives its place back
    again, code = await _open("/ws/approvals/inbox/", cookie)
    assert code is None
    for communicator in (watching, others, again):
        await communicator.disconnect()
    assert socket_budget.ledger().held() == {}  # every place given back


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_socket_that_ends_without_a_disconnect_gives_its_place_back(cast, settings):
    """A consumer cancelled (or failed) without its disconnect message: the place is not kept."""
    settings.ECSPORTAL_SOCKETS_PER_USER = 1
    _, cookie = await database_sync_to_async(logged_in)(cast.approver)
    first, code = await _open("/ws/approvals/inbox/", cookie)
    assert code is None and socket_budget.ledger().held()
    first.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first.future
    assert socket_budget.ledger().held() == {}
    second, code = await _open("/ws/approvals/inbox/", cookie)
    assert code is None
    await second.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_no_limit_when_the_setting_is_zero(cast, settings):
    settings.ECSPORTAL_SOCKETS_PER_USER = 0
    _, cookie = await database_sync_to_async(logged_in)(cast.approver)
    opened = [await _open("/ws/approvals/inbox/", cookie) for _ in range(5)]
    assert [code for _, code in opened] == [None] * 5
    for communicator, _ in opened:
        await communicator.disconnect()


# --- the Redis ledger (several processes), against a redis-server of this module's own


@pytest.fixture(scope="module")
def redis_url():
    """A redis-server of this module's own (never the machine's), stopped after."""
    with running_redis() as url:
        yield url


def _ledgers(url: str, n: int) -> list[socket_budget.RedisLedger]:
    """n processes' ledgers on one Redis, under a prefix of this test's own."""
    prefix = f"test-{time.monotonic_ns()}"
    return [socket_budget.RedisLedger(url, prefix) for _ in range(n)]


@pytest.mark.asyncio
async def test_two_processes_share_one_count_and_a_given_back_place_is_free_again(redis_url):
    a, b = _ledgers(redis_url, 2)
    assert await a.take(user_pk=7, channel="a1", limit=3)
    assert await b.take(user_pk=7, channel="b1", limit=3)
    assert await a.take(user_pk=7, channel="a2", limit=3)
    assert not await b.take(user_pk=7, channel="b2", limit=3)
    assert await b.take(user_pk=8, channel="b3", limit=3)  # another user
    await a.give_back(user_pk=7, channel="a1")
    assert await b.take(user_pk=7, channel="b2", limit=3)


@pytest.mark.asyncio
async def test_racing_processes_never_take_more_than_the_limit(redis_url):
    ledgers = _ledgers(redis_url, 4)
    results = await asyncio.gather(*(ledgers[i % 4].take(user_pk=1, channel=f"c{i}", limit=5) for i in range(40)))
    assert sum(bool(r) for r in results) == 5


@pytest.mark.asyncio
async def test_the_places_of_a_dead_process_lapse_and_a_living_one_keeps_its_own(redis_url, monkeypatch):
    monkeypatch.setattr(socket_budget, "TTL_SECONDS", 1.0)
    living, dead = _ledgers(redis_url, 2)
    assert await living.take(user_pk=5, channel="alive", limit=2)
    assert await dead.take(user_pk=5, channel="gone", limit=2)
    assert not await living.take(user_pk=5, channel="new", limit=2)
    for _ in range(3):  # the living process renews; the dead one never will
        await asyncio.sleep(0.5)
        await living.renew()
    assert await living.take(user_pk=5, channel="new", limit=2)  # the dead one's place lapsed
    assert not await living.take(user_pk=5, channel="more", limit=2)  # "alive" still counts


@pytest.mark.asyncio
async def test_an_unreachable_redis_lets_the_socket_through_uncounted():
    ledger = socket_budget.RedisLedger(f"redis://127.0.0.1:{free_port()}/0", "nowhere")
    assert await ledger.take(user_pk=1, channel="x", limit=1) is None


def test_in_one_process_places_belong_to_their_event_loop():
    """A socket cannot outlive its loop: places left on a closed loop do not count on the next."""
    ledger = socket_budget.LocalLedger()

    async def take(channel: str) -> bool:
        return await ledger.take(user_pk=1, channel=channel, limit=1)

    async def two() -> tuple[bool, bool]:
        return await take("a"), await take("b")

    assert asyncio.run(two()) == (True, False)
    assert asyncio.run(take("c")) is True
