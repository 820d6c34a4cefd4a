from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet

from ecsportal.audit.models import AuditEvent


def audit_events_for_user(
    *,
    user: AbstractBaseUser,
    admin_account_pks: list[int] | None,
    account_pk: int | None = None,
    action: str = "",
    actor: str = "",
    text: str = "",
) -> QuerySet[AuditEvent]:
    """Superusers see everything; account admins see their accounts' events only.

    `admin_account_pks` comes from the accounts access gate (None means "all", for superusers);
    this app does not import accounts, keeping the dependency one-way.
    """
    events = AuditEvent.objects.all()
    if admin_account_pks is not None:
        events = events.filter(account_pk__in=admin_account_pks)
    if account_pk:
        events = events.filter(account_pk=account_pk)
    if action:
        events = events.filter(action__startswith=action)
    if actor:
        events = events.filter(actor_username=actor)
    if text:
        events = events.filter(target__icontains=text)
    return events.order_by("-created_at", "-id")
