"""Live updates for approval pages. Messages say only "something changed"; the page then
fetches its fragment over HTTP, through the same gate as any page load.

Both build on `PortalConsumer` (login required, closed at logout) and authorise through the
HTTP views' own functions (`approval_get_for_user`, `accounts_for_user`).
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.core.exceptions import PermissionDenied
from django.http import Http404

from ecsportal.accounts.sockets import PortalConsumer
from ecsportal.approvals.notify import approvers_group, request_group
from ecsportal.approvals.selectors import approval_get_for_user, approver_account_pks


class _ListenOnly(PortalConsumer):
    """The browser has nothing to say on these sockets: every frame it sends (text, binary,
    malformed or deeply nested JSON) is dropped before any decoding, so none can raise in the
    consumer (a traceback and close 1011) or cost the server time."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        return None


class ApprovalConsumer(_ListenOnly):
    """One request's page: tells the viewer when its status or decisions change."""

    async def authorise(self, user: Any) -> list[str] | None:
        pk = self.scope["url_route"]["kwargs"]["pk"]
        try:
            await database_sync_to_async(approval_get_for_user)(user=user, pk=pk)
        except (Http404, PermissionDenied):
            return None
        return [request_group(int(pk))]

    async def approval_changed(self, event: dict[str, Any]) -> None:
        await self.send_json({"changed": "approval", "pk": event["pk"]})


class InboxConsumer(_ListenOnly):
    """An approver's inbox and navigation count: any change on an account they approve for."""

    async def authorise(self, user: Any) -> list[str] | None:
        accounts = await database_sync_to_async(approver_account_pks)(user=user)
        return [approvers_group(pk) for pk in accounts] or None

    async def approval_changed(self, event: dict[str, Any]) -> None:
        await self.send_json({"changed": "inbox", "pk": event["pk"]})
