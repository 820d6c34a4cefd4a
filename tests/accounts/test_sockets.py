"""PortalConsumer: anonymous refused, foreign origins refused, sockets closed at logout."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import path

from ecsportal.accounts.sockets import (
    CLOSE_LOGGED_OUT,
    CLOSE_UNAUTHENTICATED,
    PortalConsumer,
    SocketAuthMiddlewareStack,
)
from tests.cookies import logged_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


class EchoConsumer(PortalConsumer):
    async def receive_json(self, content: dict, **kwargs: object) -> None:
        if content == {"who": "?"}:  # what the socket stack handed the consumer
            sends.append(self.base_send)
            await self.send_json({"user": self.scope["user"].username, "session": self.scope["session"].session_key})
            return
        await self.send_json({"echo": content})


sends: list = []


# The same stack as ecsportal/asgi.py, around a consumer that exists only in this test.
application = AllowedHostsOriginValidator(
    SocketAuthMiddlewareStack(URLRouter([path("ws/echo/", EchoConsumer.as_asgi())]))
)


@database_sync_to_async
def _logged_in_client(username: str) -> tuple[Client, str]:
    return logged_in(get_user_model().objects.create_user(username, password="pw-for-tests"))


def _communicator(cookie: str | None, origin: str = "http://localhost") -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode()), (b"host", b"localhost")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, "/ws/echo/", headers=headers)


async def test_anonymous_socket_is_closed_without_accepting():
    communicator = _communicator(None)
    connected, code = await communicator.connect()
    assert not connected
    assert code == CLOSE_UNAUTHENTICATED


async def test_foreign_origin_is_refused_even_when_logged_in():
    _, cookie = await _logged_in_client("alice")
    communicator = _communicator(cookie, origin="https://evil.example")
    connected, _ = await communicator.connect()
    assert not connected


async def test_logged_in_user_connects_and_logout_closes_the_socket():
    client, cookie = await _logged_in_client("bob")
    communicator = _communicator(cookie)
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"ping": 1})
    assert await communicator.receive_json_from() == {"echo": {"ping": 1}}

    response = await database_sync_to_async(client.post)("/logout/")
    assert response.status_code == 302

    closed = await communicator.receive_output(timeout=3)
    assert closed == {"type": "websocket.close", "code": CLOSE_LOGGED_OUT}


class _LayerWithRedisDown:
    """A channel layer whose every call fails, as channels_redis's does while Redis restarts."""

    def __init__(self, **kwargs: object) -> None:
        pass

    async def new_channel(self, prefix: str = "specific") -> str:
        return f"{prefix}.down!1"

    async def group_add(self, group: str, channel: str) -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    group_discard = group_add

    async def receive(self, channel: str) -> dict:
        await asyncio.Event().wait()  # nothing ever comes
        return {}


async def test_a_socket_opened_while_the_channel_layer_is_down_is_refused_not_a_server_error(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}._LayerWithRedisDown"}}
    _, cookie = await _logged_in_client("carol")
    communicator = _communicator(cookie)

    connected, _ = await communicator.connect()  # an exception here would be daphne's HTTP 500

    assert not connected  # refused before the handshake: the page tries again
    await communicator.disconnect()


async def test_the_session_and_user_come_from_the_cookie_and_send_is_the_servers_own():
    """The socket stack resolves the login from the session cookie as Channels' does, but hands
    the consumer the server's `send` unwrapped: Channels' session wrapper read the session for
    every frame sent, to save it on an HTTP response a socket never sends."""
    client, cookie = await _logged_in_client("carol")
    communicator = _communicator(cookie)
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"who": "?"})
    answer = await communicator.receive_json_from()
    assert answer == {"user": "carol", "session": client.session.session_key}
    assert sends[-1] == communicator.output_queue.put
    await communicator.disconnect()
