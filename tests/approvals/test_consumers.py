"""The live sockets, through the full ASGI application (origin check, session auth, routing)."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from ecsportal.approvals import services
from ecsportal.asgi import application
from ecsportal.stops.services import stop_request
from tests.cookies import session_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]
ORIGIN = (b"origin", b"http://localhost")


async def _connect(path: str, user=None, origin: tuple[bytes, bytes] = ORIGIN):
    headers = [origin]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(session_cookie)(user)))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect()
    return communicator, connected


@pytest.fixture
def pending(cast, stop_target):
    return stop_request(actor=cast.operator, target=stop_target(cast.operator), reason="live")


async def test_anonymous_sockets_are_refused(pending):
    for path in ("/ws/approvals/inbox/", f"/ws/approvals/{pending.pk}/"):
        communicator, connected = await _connect(path)
        assert not connected
        await communicator.disconnect()


async def test_a_foreign_origin_is_refused(cast, pending):
    communicator, connected = await _connect(
        f"/ws/approvals/{pending.pk}/", cast.operator, origin=(b"origin", b"https://evil.example")
    )
    assert not connected
    await communicator.disconnect()


async def test_an_outsider_cannot_watch_a_request(cast, pending):
    communicator, connected = await _connect(f"/ws/approvals/{pending.pk}/", cast.outsider)
    assert not connected
    await communicator.disconnect()


async def test_an_operator_has_no_inbox_socket(cast):
    communicator, connected = await _connect("/ws/approvals/inbox/", cast.operator)
    assert not connected
    await communicator.disconnect()


async def test_the_requesters_page_hears_the_decision_and_the_result(cast, pending):
    communicator, connected = await _connect(f"/ws/approvals/{pending.pk}/", cast.operator)
    assert connected
    await sync_to_async(services.approval_decide)(actor=cast.approver, request_pk=pending.pk, decision="approve")
    first = json.loads(await communicator.receive_from(timeout=5))
    second = json.loads(await communicator.receive_from(timeout=5))
    assert first == {"changed": "approval", "pk": pending.pk}
    assert second == first  # the decision, then the execution
    await communicator.disconnect()


async def test_an_approvers_inbox_hears_a_new_request(cast, stop_target):
    communicator, connected = await _connect("/ws/approvals/inbox/", cast.approver)
    assert connected
    target = await sync_to_async(stop_target)(cast.operator)
    request = await sync_to_async(stop_request)(actor=cast.operator, target=target, reason="new")
    message = json.loads(await communicator.receive_from(timeout=5))
    assert message == {"changed": "inbox", "pk": request.pk}
    await communicator.disconnect()


async def test_an_approver_of_another_account_hears_nothing(cast, stop_target):
    communicator, connected = await _connect("/ws/approvals/inbox/", cast.outsider)
    assert connected  # admin (so approver) of Other Team
    target = await sync_to_async(stop_target)(cast.operator)
    await sync_to_async(stop_request)(actor=cast.operator, target=target, reason="not yours")
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


HOSTILE_FRAMES = [
    {"text_data": "not json"},
    {"text_data": "{"},
    {"bytes_data": b"\x00\xff\xfe binary"},
    {"text_data": "[" * 100_000 + "]" * 100_000},  # deeper than json's recursion limit
    {"text_data": '{"a":' * 50_000 + "1" + "}" * 50_000},
    {"text_data": '{"changed": "inbox"}'},
]


@pytest.mark.parametrize("path", ["inbox", "request"])
async def test_the_listen_only_sockets_ignore_whatever_the_browser_sends(cast, pending, path):
    url = "/ws/approvals/inbox/" if path == "inbox" else f"/ws/approvals/{pending.pk}/"
    communicator, connected = await _connect(url, cast.approver)
    assert connected
    for frame in HOSTILE_FRAMES:
        await communicator.send_to(**frame)
    assert await communicator.receive_nothing(timeout=0.2)  # no answer, and not closed (1011)
    await sync_to_async(services.approval_decide)(actor=cast.approver, request_pk=pending.pk, decision="reject")
    message = json.loads(await communicator.receive_from(timeout=5))
    assert message["pk"] == pending.pk  # still listening
    await communicator.disconnect()
