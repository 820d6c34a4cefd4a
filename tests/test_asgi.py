"""The full ASGI application: a WebSocket path no app serves is refused, never a 500."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from ecsportal.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]
ORIGIN = (b"origin", b"http://localhost")


def _cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.mark.parametrize("path", ["/ws/nonexistent/", "/ws/approvals/abc/", "/", "/ws/approvals/1/extra/"])
async def test_unknown_paths_are_refused_before_the_handshake(cast, path, caplog):
    headers = [ORIGIN, (b"cookie", await sync_to_async(_cookie)(cast.admin))]
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def test_anonymous_sockets_to_unknown_paths_are_refused_too(db):
    communicator = WebsocketCommunicator(application, "/ws/nonexistent/", headers=[ORIGIN])
    connected, _ = await communicator.connect()
    assert not connected


async def test_known_paths_still_reach_their_consumer(cast):
    headers = [ORIGIN, (b"cookie", await sync_to_async(_cookie)(cast.approver))]
    communicator = WebsocketCommunicator(application, "/ws/approvals/inbox/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    await communicator.disconnect()
