from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest

from ecsportal.audit.models import AuditEvent

# Keys whose values never belong in an audit record, whatever a caller passes.
_SECRET_KEYS = {"secret_access_key", "secret", "password", "token", "token_value", "tokenvalue"}


def _scrub(details: Any) -> Any:
    """`details` without secret-named keys, at any depth (dicts inside lists too)."""
    if isinstance(details, dict):
        return {key: _scrub(value) for key, value in details.items() if str(key).lower() not in _SECRET_KEYS}
    if isinstance(details, list | tuple):
        return [_scrub(value) for value in details]
    return details


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address. The login throttle counts failures per this same address
    (AXES_CLIENT_IP_CALLABLE), so a client must not be able to choose it.

    With `ECSPORTAL_TRUSTED_PROXY_HOPS` = 0 (the default) it is the peer, REMOTE_ADDR. Behind N
    trusted proxies it is the address the outermost of them saw: the N-th entry of
    X-Forwarded-For counted from the right, since each proxy appends the address it saw
    (entries further left are whatever the client sent, and never believed). A request with
    fewer entries did not come through the proxies: its peer is used.
    """
    if request is None:
        return None
    address = request.META.get("REMOTE_ADDR") or ""
    hops = int(getattr(settings, "ECSPORTAL_TRUSTED_PROXY_HOPS", 0) or 0)
    if hops > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= hops:
            address = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:  # a unix socket, an empty value, a forged word: no address rather than a bad row
        return None


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    target: str = "",
    account: Any = None,
    details: dict[str, Any] | None = None,
    source_ip: str | None = None,
    actor_label: str = "system",
) -> AuditEvent:
    """Append one event. Call it inside the same transaction as the change it describes.

    Without an actor the event is the portal's own doing (`actor_label`, "system"), or for a
    failed login "anonymous".
    """
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    # An API call's actor carries its token's scope (accounts.scope): the event names the token.
    scope = getattr(actor, "ecsportal_token_scope", None)
    if scope is not None:
        details = {**(details or {}), "api_token": scope.label}
    return AuditEvent.objects.create(
        actor=user,
        actor_username=user.get_username() if user else actor_label,
        source_ip=source_ip,
        account_pk=getattr(account, "pk", None),
        account_name=getattr(account, "name", "") or "",
        action=action,
        target=target[:512],
        details=_scrub(details or {}),
    )
