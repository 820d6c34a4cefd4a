"""The base of every WebSocket consumer: login required, and closed when its user logs out.

Each consumer joins the group `user-<id>`; logging out (any session of the user) sends
`session.revoked` to that group, and every open socket of the user closes (portainer's
well-known hole: live sockets surviving a logout).
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import aclose_old_connections
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from ecsportal.accounts.socket_budget import socket_give_back, socket_take

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_LOGGED_OUT = 4001
CLOSE_TOO_MANY_SOCKETS = 4429  # the user already holds ECSPORTAL_SOCKETS_PER_USER open sockets


def user_group(user_pk: int) -> str:
    return f"user-{user_pk}"


class PortalConsumer(AsyncJsonWebsocketConsumer):
    """Subclasses implement `authorise()` with the same gate function their HTTP view uses.

    `authorise` returns the channel-layer groups the socket should join, or None to refuse it.
    """

    groups_joined: list[str]
    socket_place: bool | None = None  # a place in the user's socket budget (socket_budget)

    async def connect(self) -> None:
        self.groups_joined = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await aclose_old_connections()
        groups = await self.authorise(user)
        if groups is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.socket_place = await socket_take(user_pk=user.pk, channel=self.channel_name)
        if self.socket_place is False:
            # Accepted, then closed with the code: refused before the handshake, the browser
            # would only see 1006 and the page could not say why.
            await self.accept()
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)
            return
        try:
            for group in [user_group(user.pk), *groups]:
                await self.join(group)
        except Exception as exc:  # the channel layer is unreachable (Redis restarting): refuse, never a 500
            logger.warning("socket %s refused for now: the channel layer failed (%s)", self.scope.get("path"), exc)
            await self._give_back_place()
            await self.close()  # before accept: the handshake is refused and the page tries again
            return
        await self.accept()
        await self.on_open()

    async def authorise(self, user: Any) -> list[str] | None:
        return []

    async def on_open(self) -> None:
        """Send whatever the page needs first, after accept."""

    async def join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.append(group)

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception as exc:  # Redis gone: the membership expires with the group anyway
                logger.info("leaving %s failed: %s", group, exc)
                break
        await self._give_back_place()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Also when the consumer failed or was cancelled without a disconnect: a place kept
            # by a socket that is gone would count against its user for the life of the process.
            await self._give_back_place()

    async def _give_back_place(self) -> None:
        if self.socket_place:
            self.socket_place = None
            await socket_give_back(user_pk=self.scope["user"].pk, channel=self.channel_name)

    async def session_revoked(self, event: dict) -> None:
        await self.close(code=CLOSE_LOGGED_OUT)


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """The last route: a socket to a path no app serves is refused before the handshake
    (Channels' router would raise, a 500 with a traceback in the log, for every typo or probe)."""

    async def connect(self) -> None:
        await self.close()


@receiver(user_logged_out)
def _close_sockets_on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(user_group(user.pk), {"type": "session.revoked"})
