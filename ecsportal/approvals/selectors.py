"""Reads of approval requests, always through the accounts access gate.

`approval_get_for_user` is the one access check for a request: the HTTP views and the
WebSocket consumer both call it. A request on an account the user is not a member of is
"not found", exactly like the account itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from ecsportal.accounts.models import Role
from ecsportal.accounts.selectors import account_get_for_user, account_role_for_user, accounts_for_user
from ecsportal.approvals.models import ApprovalDecision, ApprovalRequest, BreakGlassAck, Decision, Status

# How long a break-glass action stays in approvers' inboxes when nobody acknowledges it.
BREAK_GLASS_INBOX_DAYS = 7


def _with_counts(qs: QuerySet[ApprovalRequest]) -> QuerySet[ApprovalRequest]:
    return qs.select_related("account", "requester").annotate(
        approvals=Count("decisions", filter=Q(decisions__decision=Decision.APPROVE))
    )


def approval_get_for_user(*, user: AbstractBaseUser, pk: int | str, min_role: Role = Role.VIEWER) -> ApprovalRequest:
    """The request if `user` holds `min_role` on its account; 404 for outsiders, 403 for low roles."""
    try:
        request = _with_counts(ApprovalRequest.objects.all()).get(pk=int(pk))
    except (ApprovalRequest.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("No such approval request.") from None
    account_get_for_user(user=user, account_pk=request.account_id, min_role=min_role)
    return request


def approval_decisions(*, request: ApprovalRequest) -> list[ApprovalDecision]:
    return list(request.decisions.select_related("approver"))


def approval_approver_names(*, request: ApprovalRequest) -> list[str]:
    return [
        d.approver.get_username()
        for d in request.decisions.filter(decision=Decision.APPROVE).select_related("approver")
    ]


@dataclass(frozen=True)
class Permissions:
    can_decide: bool
    can_cancel: bool
    can_ack: bool
    why_not: str  # shown instead of the buttons


def approval_permissions(*, user: AbstractBaseUser, request: ApprovalRequest) -> Permissions:
    """What this user may do with this request now, and if nothing, why (for the page)."""
    role = account_role_for_user(user=user, account=request.account) or Role.VIEWER
    is_requester = request.requester_id == user.pk
    decided = request.decisions.filter(approver_id=user.pk).exists()
    can_cancel = is_requester and request.is_open
    can_ack = (
        request.break_glass
        and role >= Role.APPROVER
        and not is_requester
        and not BreakGlassAck.objects.filter(request=request, user_id=user.pk).exists()
    )
    why = ""
    if not request.is_open:
        why = ""
    elif is_requester:
        why = "You asked for this; someone else with the approver role must decide."
    elif role < Role.APPROVER:
        why = f"Deciding needs the approver role on {request.account.name}."
    elif decided:
        why = "You have decided; waiting for another approver."
    can_decide = request.is_open and not is_requester and role >= Role.APPROVER and not decided
    return Permissions(can_decide=can_decide, can_cancel=can_cancel, can_ack=can_ack, why_not=why)


def approver_account_pks(*, user: AbstractBaseUser) -> list[int]:
    """The accounts whose requests this user may decide on (inbox, live inbox socket)."""
    return list(accounts_for_user(user=user, min_role=Role.APPROVER).values_list("pk", flat=True))


def inbox_for_user(*, user: AbstractBaseUser) -> tuple[list[ApprovalRequest], list[ApprovalRequest]]:
    """(requests waiting for this user's decision, break-glass actions for them to see)."""
    accounts = approver_account_pks(user=user)
    if not accounts:
        return [], []
    now = timezone.now()
    waiting = _with_counts(
        ApprovalRequest.objects.filter(
            account_id__in=accounts, account__is_enabled=True, status=Status.PENDING, expires_at__gt=now
        )
        .exclude(requester_id=user.pk)
        .exclude(Exists(ApprovalDecision.objects.filter(request=OuterRef("pk"), approver_id=user.pk)))
    ).order_by("expires_at")
    fyi = (
        _with_counts(
            ApprovalRequest.objects.filter(
                account_id__in=accounts,
                break_glass=True,
                created_at__gte=now - timedelta(days=BREAK_GLASS_INBOX_DAYS),
            ).exclude(requester_id=user.pk)
        )
        .annotate(seen=Exists(BreakGlassAck.objects.filter(request=OuterRef("pk"), user_id=user.pk)))
        .order_by("seen", "-created_at")
    )
    return list(waiting), list(fyi)


def inbox_count_for_user(*, user: AbstractBaseUser) -> int:
    """Decisions waiting for this user plus break-glass actions they have not acknowledged."""
    waiting, fyi = inbox_for_user(user=user)
    return len(waiting) + sum(1 for r in fyi if not r.seen)


def requests_for_user(
    *, user: AbstractBaseUser, status: str = "", account_pk: int | None = None, mine: bool = False
) -> QuerySet[ApprovalRequest]:
    """Every request on the accounts the user is a member of, newest first, filterable."""
    qs = _with_counts(ApprovalRequest.objects.filter(account__in=accounts_for_user(user=user)))
    now = timezone.now()
    if status == Status.EXPIRED:
        qs = qs.filter(Q(status=Status.EXPIRED) | Q(status=Status.PENDING, expires_at__lte=now))
    elif status == Status.PENDING:
        qs = qs.filter(status=Status.PENDING, expires_at__gt=now)
    elif status in Status.values:
        qs = qs.filter(status=status)
    elif status == "break_glass":
        qs = qs.filter(break_glass=True)
    if account_pk is not None:
        qs = qs.filter(account_id=account_pk)
    if mine:
        qs = qs.filter(requester_id=user.pk)
    return qs.order_by("-created_at", "-id")


def user_is_approver_anywhere(*, user: AbstractBaseUser) -> bool:
    return accounts_for_user(user=user, min_role=Role.APPROVER).exists()
