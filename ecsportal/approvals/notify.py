"""Tell people a request changed: live pages (channel layer) and the optional chat webhook.

Both run only after the transaction commits (`transaction.on_commit`), so nobody hears about a
change that was rolled back, and neither can slow down or fail the change itself. Messages on
the channel layer carry no content, only "request N changed": the browser then fetches the
fragment over HTTP, through the same access gate as every page.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.urls import reverse

from ecsportal.approvals import registry
from ecsportal.approvals.models import ApprovalRequest

logger = logging.getLogger(__name__)
WEBHOOK_TIMEOUT = 5.0


def request_group(pk: int) -> str:
    return f"approval-{pk}"


def approvers_group(account_pk: int) -> str:
    return f"approvers-{account_pk}"


def after_commit(
    request: ApprovalRequest,
    event: str,
    *,
    actor: AbstractBaseUser | None,
    comment: str = "",
    webhook: bool = True,
) -> None:
    groups = [request_group(request.pk), approvers_group(request.account_id)]
    payload = webhook_payload(request, event, actor=actor, comment=comment) if webhook else None
    transaction.on_commit(lambda: _deliver(groups, request.pk, payload))


def _deliver(groups: list[str], pk: int, payload: dict[str, Any] | None) -> None:
    publish(groups, pk)
    if payload is not None and settings.ECSPORTAL_APPROVAL_WEBHOOK_URL:
        threading.Thread(
            target=webhook_post,
            args=(settings.ECSPORTAL_APPROVAL_WEBHOOK_URL, payload),
            name=f"approval-webhook-{pk}",
            daemon=True,
        ).start()


def publish(groups: list[str], pk: int) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        for group in groups:
            async_to_sync(layer.group_send)(group, {"type": "approval.changed", "pk": pk})
    except Exception:  # a live page missing one update is better than a failed approval
        logger.warning("could not publish change of approval request %s", pk, exc_info=True)


_SENTENCES = {
    "requested": "{who} asks to {action} {target} on {account} (needs {required}): {reason}",
    "break_glass": "BREAK-GLASS: {who} ran {action} {target} on {account} without approval. Why: {why}",
    "approve": "{who} approved {action} {target} on {account}{comment}",
    "reject": "{who} rejected {action} {target} on {account}{comment}",
    "cancelled": "{who} cancelled the request to {action} {target} on {account}",
    "expired": "The request to {action} {target} on {account} expired without enough approvals",
    "executed": "Done: {action} {target} on {account}. {result}",
    "failed": "Failed: {action} {target} on {account}. {result}",
}


def webhook_payload(
    request: ApprovalRequest, event: str, *, actor: AbstractBaseUser | None, comment: str = ""
) -> dict[str, Any]:
    """A body chat tools accept (`text`, as Slack, Mattermost and Teams read it) plus the facts."""
    path = reverse("approvals:detail", args=[request.pk])
    url = (settings.ECSPORTAL_BASE_URL.rstrip("/") + path) if settings.ECSPORTAL_BASE_URL else path
    who = actor.get_username() if actor is not None else "ecsportal"
    required = request.approvals_required
    sentence = _SENTENCES.get(event, "{action} {target} on {account}: " + event).format(
        who=who,
        action=registry.label_for(request.action).lower(),
        target=request.target_label,
        account=request.account.name,
        required=f"{required} approval{'s' if required != 1 else ''}",
        reason=request.reason,
        why=request.break_glass_reason,
        comment=f": {comment}" if comment else "",
        result=request.result,
    )
    return {
        "text": f"ecsportal #{request.pk}: {sentence} {url}",
        "event": f"approval.{event}",
        "request": {
            "id": request.pk,
            "url": url,
            "action": request.action,
            "target": request.target_label,
            "account": request.account.name,
            "requester": request.requester.get_username(),
            "reason": request.reason,
            "status": request.status,
            "approvals_required": required,
            "break_glass": request.break_glass,
            "break_glass_reason": request.break_glass_reason,
            "result": request.result,
        },
        "actor": who,
        "comment": comment,
    }


def webhook_post(url: str, payload: dict[str, Any]) -> None:
    """POST the JSON body; log failures, never raise (this runs on its own thread)."""
    body = json.dumps(payload).encode()
    host = urllib.parse.urlsplit(url).netloc or "(no host)"
    try:
        req = urllib.request.Request(  # noqa: S310 - the URL is the operator's own setting
            url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "ecsportal"}
        )
        with urllib.request.urlopen(req, timeout=WEBHOOK_TIMEOUT) as answer:  # noqa: S310
            answer.read(1024)
    except urllib.error.HTTPError as exc:
        logger.warning("approval webhook to %s failed: HTTP %s", host, exc.code)
    except Exception as exc:
        # The host and the error's type only: chat webhook URLs carry their secret in the path,
        # and some errors (a malformed URL) repeat the whole URL in their message.
        logger.warning("approval webhook to %s failed: %s", host, type(exc).__name__)
