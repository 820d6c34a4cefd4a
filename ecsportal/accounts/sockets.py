"""The base of every WebSocket consumer: login required, closed when its user logs out, and its
access re-checked while it stays open.

Each consumer joins the group `user-<id>`; logging out (any session of the user) sends
`session.revoked` to that group, and every open socket of the user closes (portainer's
well-known hole: live sockets surviving a logout). A membership removed or lowered, a user
deactivated, a login session expired: the socket re-runs its own `authorise()` (the gate of its
HTTP view) and closes with 4003 "access revoked" when it no longer passes (revocation.py says
when; Argo CD shipped this hole twice, CVE-2023-40025 and CVE-2024-41666).

Hooks for a consumer that owns something (a shell): set `account_pk` when the socket is about
one account, override `on_access_revoked()`, or receive `revocation.socket_access_revoked`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.auth import AuthMiddleware
from channels.db import aclose_old_connections, database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.sessions import CookieMiddleware, InstanceSessionWrapper, SessionMiddleware
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from ecsportal.accounts import revocation
from ecsportal.accounts.socket_budget import socket_give_back, socket_take

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_LOGGED_OUT = 4001
CLOSE_ACCESS_REVOKED = 4003  # the gate no longer passes: membership, role, user, or login session
ACCESS_REVOKED_REASON = "access revoked"
CLOSE_TOO_MANY_SOCKETS = 4429  # the user already holds ECSPORTAL_SOCKETS_PER_USER open sockets


class SocketSessionMiddleware(SessionMiddleware):
    """Channels' session middleware for WebSockets, without its wrapper around `send`.

    The wrapper saves a modified session, and sets its cookie, on `http.response.start`, which
    a socket never sends; yet for every frame a socket sent it read the session's `modified`
    and `is_empty()` through the lazy object (3 % of the server's CPU in `relay.py`'s 100-run
    round, where each output line is a frame). The session is resolved from the cookie as
    before; the consumer gets the server's own `send`."""

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        wrapper = InstanceSessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, send)


def SocketAuthMiddlewareStack(inner: Any) -> Any:  # noqa: N802 (named as Channels' AuthMiddlewareStack)
    """Cookies, the session (`SocketSessionMiddleware`) and the user, for the WebSocket routes."""
    return CookieMiddleware(SocketSessionMiddleware(AuthMiddleware(inner)))


def user_group(user_pk: int) -> str:
    return f"user-{user_pk}"


class PortalConsumer(AsyncJsonWebsocketConsumer):
    """Subclasses implement `authorise()` with the same gate function their HTTP view uses.

    `authorise` returns the channel-layer groups the socket should join, or None to refuse it.
    """

    groups_joined: list[str]
    socket_place: bool | None = None  # a place in the user's socket budget (socket_budget)
    account_pk: int | None = None  # the account this socket is about, when one (sent with the revocation)
    access_revoked: bool = False
    access_fingerprint: tuple | None = None  # the user's roles when the sweep last checked (revocation.py)
    _recheck_lock: asyncio.Lock | None = None

    async def connect(self) -> None:
        self.groups_joined = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await aclose_old_connections()
        # Before the gate: what the sweep compares against later (revocation.fingerprint).
        self.access_fingerprint = await database_sync_to_async(revocation.fingerprint)(user.pk)
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
        revocation.sweep_join(self)
        await self.on_open()

    async def authorise(self, user: Any) -> list[str] | None:
        return []

    async def on_open(self) -> None:
        """Send whatever the page needs first, after accept."""

    async def join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.append(group)

    async def disconnect(self, code: int) -> None:
        revocation.sweep_leave(self)
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
            revocation.sweep_leave(self)
            await self._give_back_place()

    async def _give_back_place(self) -> None:
        if self.socket_place:
            self.socket_place = None
            await socket_give_back(user_pk=self.scope["user"].pk, channel=self.channel_name)

    async def session_revoked(self, event: dict) -> None:
        """The user logged out: what the socket owns ends as for a revocation, then 4001."""
        if not self.access_revoked:
            self.access_revoked = True
            await self._tell_revoked("the user logged out")
        await self.close(code=CLOSE_LOGGED_OUT)

    # --- access re-checked while the socket is open (revocation.py) ----------------------

    def session_key(self) -> str | None:
        session = self.scope.get("session")
        return getattr(session, "session_key", None) if session is not None else None

    async def access_changed(self, event: dict) -> None:
        """Something about this user's access changed (broadcast to `user-<id>`): check again."""
        await self.recheck_access()

    async def recheck_access(self) -> None:
        """Run the socket's own gate again with the user read afresh; close it if it no longer
        passes, and follow its groups when they changed (an approver on one more account)."""
        if self.access_revoked:
            return
        if self._recheck_lock is None:
            self._recheck_lock = asyncio.Lock()
        async with self._recheck_lock:
            if self.access_revoked:
                return
            user_pk = self.scope["user"].pk
            try:
                user = await database_sync_to_async(_fresh_user)(user_pk)
                if user is None or not user.is_active:
                    await self.revoke_access("the user was deactivated or deleted")
                    return
                self.scope["user"] = user
                groups = await self.authorise(user)
            except Exception as exc:  # the database is away: keep the socket, the sweep tries again
                logger.warning("re-checking access of socket %s failed (%s)", self.scope.get("path"), exc)
                self.access_fingerprint = None
                return
            if groups is None:
                await self.revoke_access("the access gate no longer allows this socket")
                return
            await self._follow_groups(groups)

    async def _follow_groups(self, groups: list[str]) -> None:
        wanted = [user_group(self.scope["user"].pk), *groups]
        for group in [g for g in self.groups_joined if g not in wanted]:
            await self.channel_layer.group_discard(group, self.channel_name)
            self.groups_joined.remove(group)
        for group in [g for g in wanted if g not in self.groups_joined]:
            await self.join(group)

    async def on_access_revoked(self) -> None:
        """Override to end what this socket owns (a shell: "access revoked") before it closes."""

    async def revoke_access(self, why: str) -> None:
        """Close with 4003 "access revoked", once, after telling the hook and the signal."""
        if self.access_revoked:
            return
        self.access_revoked = True
        user_pk = self.scope["user"].pk
        logger.info("socket %s of user %s closed: access revoked (%s)", self.scope.get("path"), user_pk, why)
        await self._tell_revoked(why)
        await self.close(code=CLOSE_ACCESS_REVOKED, reason=ACCESS_REVOKED_REASON)

    async def _tell_revoked(self, why: str) -> None:
        """The hook, then the signal (neither may keep the socket open), then out of the sweep."""
        try:
            await self.on_access_revoked()
        except Exception:
            logger.exception("on_access_revoked of %s failed", type(self).__name__)
        await revocation.socket_access_revoked.asend_robust(
            sender=type(self), user_pk=self.scope["user"].pk, account_pk=self.account_pk, consumer=self, reason=why
        )
        revocation.sweep_leave(self)


def _fresh_user(pk: int) -> Any:
    return get_user_model().objects.filter(pk=pk).first()


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
