from __future__ import annotations

from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from ecsportal.audit.models import AuditEvent
from ecsportal.ui.distinct import distinct_values

# What the action filter offers: each family of events, then the actions themselves.
ACTION_FAMILIES = ["auth.", "user.", "account.", "membership.", "run.", "approval.", "runbook.", "stopped.", "audit."]


def audit_events_for_user(
    *,
    user: AbstractBaseUser,
    admin_account_pks: list[int] | None,
    account_pk: int | None = None,
    action: str = "",
    actor: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    text: str = "",
) -> QuerySet[AuditEvent]:
    """Superusers see everything; account admins see their accounts' events only.

    `admin_account_pks` comes from the accounts access gate (None means "all", for superusers);
    this app does not import accounts, keeping the dependency one-way. Events that belong to
    no account (logins, user administration, portal-wide refreshes) are therefore superusers'.
    `action` matches from the start ("approval." is every approval event); `text` is searched
    in the target, the people, the account's name, the action, the address and the details.
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
    if since:
        events = events.filter(created_at__gte=since)
    if until:
        events = events.filter(created_at__lt=until)
    if text:
        events = events.annotate(details_text=Cast("details", TextField())).filter(
            Q(target__icontains=text)
            | Q(actor_username__icontains=text)
            | Q(account_name__icontains=text)
            | Q(action__icontains=text)
            | Q(details_text__icontains=text)
            | Q(source_ip__startswith=text)
        )
    return events.order_by("-created_at", "-id")


def audit_action_choices(*, admin_account_pks: list[int] | None) -> list[str]:
    """The families and the actions recorded so far in what this user may read."""
    # Skipping through the (account_pk, action) or (action) index: a DISTINCT read every event.
    within = ("account_pk", admin_account_pks) if admin_account_pks is not None else None
    return ACTION_FAMILIES + distinct_values(AuditEvent, "action", within=within)
