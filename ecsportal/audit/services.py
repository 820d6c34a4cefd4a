from __future__ import annotations

import ipaddress
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest

from ecsportal.audit.models import AuditEvent

# Keys whose values never belong in an audit record, whatever a caller passes.
_SECRET_KEYS = {"secret_access_key", "secret", "password", "token", "token_value", "tokenvalue"}


def _scrub(details: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in details.items():
        if key.lower() in _SECRET_KEYS:
            continue
        clean[key] = _scrub(value) if isinstance(value, dict) else value
    return clean


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address as the server saw it. Behind the TLS proxy daphne's
    `--proxy-headers` (the Dockerfile) puts the forwarded address in REMOTE_ADDR. The login
    throttle counts failures per this same address (AXES_CLIENT_IP_CALLABLE)."""
    if request is None:
        return None
    address = request.META.get("REMOTE_ADDR") or ""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:  # a unix socket, an empty value: no address rather than a bad row
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
