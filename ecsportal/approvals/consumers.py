"""Live updates for approval pages. Messages say only "something changed"; the page then
fetches its fragment over HTTP, through the same gate as any page load.

Both consumers refuse anonymous users in connect and authorise through the HTTP views' own
functions (`approval_get_for_user`, `accounts_for_user`).
"""

from __future__ import annotations

import json
from typing import Any

from channels.db import aclose_old_connections, database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404

from ecsportal.accounts.models import Role
from ecsportal.accounts.selectors import accounts_for_user
from ecsportal.approvals.notify import approvers_group, request_group
from ecsportal.approvals.selectors import approval_get_for_user

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


class _GroupConsumer(AsyncWebsocketConsumer):
    joined: list[str]

    async def _join(self, groups: list[str]) -> None:
        self.joined = groups
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Listen-only sockets: whatever the browser sends is ignored."""


class ApprovalConsumer(_GroupConsumer):
    """One request's page: tells the viewer when its status or decisions change."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await aclose_old_connections()
        pk = self.scope["url_route"]["kwargs"]["pk"]
        try:
            await database_sync_to_async(approval_get_for_user)(user=user, pk=pk)
        except (Http404, PermissionDenied):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.pk = int(pk)
        await self._join([request_group(self.pk)])
        await self.accept()

    async def approval_changed(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"changed": "approval", "pk": event["pk"]}))


def _approver_account_pks(user: Any) -> list[int]:
    return list(accounts_for_user(user=user, min_role=Role.APPROVER).values_list("pk", flat=True))


class InboxConsumer(_GroupConsumer):
    """An approver's inbox and navigation count: any change on an account they approve for."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await aclose_old_connections()
        accounts = await database_sync_to_async(_approver_account_pks)(user)
        if not accounts:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self._join([approvers_group(pk) for pk in accounts])
        await self.accept()

    async def approval_changed(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"changed": "inbox", "pk": event["pk"]}))
