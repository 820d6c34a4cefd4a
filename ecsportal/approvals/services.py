"""Writes of the approval gate: request, decide, cancel, acknowledge, and run exactly once.

Exactly once: a request leaves PENDING only through a conditional UPDATE
(`filter(pk=..., status=PENDING, expires_at__gt=now).update(...)`), inside a transaction
that also holds the request row locked (`select_for_update`) while it counts approvals. Only
the caller whose UPDATE changed the row runs the executor, after the transaction has
committed, so the AWS call never holds a database lock. The unique (request, approver)
constraint makes a double-submitted approval count once.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from ecsportal.accounts.models import AwsAccount, Role
from ecsportal.accounts.selectors import account_get_for_user, account_role_for_user
from ecsportal.approvals import notify, policy, registry
from ecsportal.approvals.models import ApprovalDecision, ApprovalRequest, BreakGlassAck, Decision, Status
from ecsportal.audit.services import audit_record

logger = logging.getLogger(__name__)


class ApprovalClosed(Exception):
    """The request can no longer take this step (decided, expired, cancelled, already run)."""


def _closed_after_commit(request: ApprovalRequest) -> None:
    """The request closed without running its action: its action hears it after the commit."""
    transaction.on_commit(lambda: registry.closed(request))


def _details(request: ApprovalRequest, **extra: Any) -> dict[str, Any]:
    return {"request": request.pk, "action": request.action, "break_glass": request.break_glass, **extra}


def _audit(
    request: ApprovalRequest,
    action: str,
    *,
    actor: AbstractBaseUser | None,
    account: AwsAccount,
    source_ip: str | None = None,
    **details: Any,
) -> None:
    """One audit event about a request, named the same way everywhere ("#12 prod-web/…")."""
    audit_record(
        actor=actor,
        action=action,
        target=f"#{request.pk} {request.target_label}",
        account=account,
        details=_details(request, **details),
        source_ip=source_ip,
    )


@transaction.atomic
def _create(
    *,
    actor: AbstractBaseUser,
    action: str,
    account: AwsAccount,
    target: dict[str, Any],
    target_label: str,
    reason: str,
    break_glass_reason: str,
    source_ip: str | None,
) -> ApprovalRequest:
    required = (
        0 if break_glass_reason else policy.approvals_required(account=account, policy=registry.get(action).policy)
    )
    # Nothing to wait for (break-glass, or a policy of 0): the row is born claimed for execution.
    now = timezone.now()
    request = ApprovalRequest.objects.create(
        action=action,
        target=target,
        target_label=target_label[:512],
        account=account,
        requester=actor,
        reason=reason,
        status=Status.EXECUTING if required == 0 else Status.PENDING,
        claimed_at=now if required == 0 else None,
        approvals_required=required,
        expires_at=now + policy.time_to_live(account=account),
        break_glass=bool(break_glass_reason),
        break_glass_reason=break_glass_reason,
    )
    _audit(
        request,
        "approval.break_glass" if break_glass_reason else "approval.request",
        actor=actor,
        account=account,
        source_ip=source_ip,
        reason=reason,
        approvals_required=required,
        break_glass_reason=break_glass_reason,
    )
    notify.after_commit(request, "break_glass" if break_glass_reason else "requested", actor=actor)
    return request


def approval_request(
    *,
    actor: AbstractBaseUser,
    action: str,
    account: AwsAccount,
    target: dict[str, Any],
    target_label: str,
    reason: str,
    break_glass: bool = False,
    break_glass_reason: str = "",
    source_ip: str | None = None,
) -> ApprovalRequest:
    """Ask for `action` on `target`. Runs it at once for break-glass or a policy of zero approvals."""
    role = account_role_for_user(user=actor, account=account)
    if role is None:
        raise Http404("No such account.")
    if role < Role.OPERATOR:
        raise PermissionDenied(f"Requesting actions needs the operator role on {account.name}.")
    if not account.is_enabled:
        raise PermissionDenied(f"{account.name} is disabled; an admin can enable it again.")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Say why: a reason is required.")
    break_glass_reason = (break_glass_reason or "").strip()
    if break_glass:
        if role < Role.ADMIN:
            raise PermissionDenied(f"Break-glass needs the admin role on {account.name}.")
        if not break_glass_reason:
            raise ValidationError("Break-glass needs a written reason for skipping approval.")
    else:
        break_glass_reason = ""
    registry.get(action)  # an unknown action fails here, before anything is recorded
    request = _create(
        actor=actor,
        action=action,
        account=account,
        target=target,
        target_label=target_label,
        reason=reason,
        break_glass_reason=break_glass_reason,
        source_ip=source_ip,
    )
    if request.status == Status.EXECUTING:
        approval_execute(request_pk=request.pk)
    return ApprovalRequest.objects.get(pk=request.pk)


def approval_decide(
    *,
    actor: AbstractBaseUser,
    request_pk: int,
    decision: str,
    comment: str = "",
    source_ip: str | None = None,
) -> ApprovalRequest:
    """Record one approver's decision; the approval that completes the count runs the action."""
    if decision not in Decision.values:
        raise ValidationError("A decision is approve or reject.")
    claimed, expired = _decide(
        actor=actor, request_pk=request_pk, decision=decision, comment=comment, source_ip=source_ip
    )
    if expired:
        raise ApprovalClosed("This request expired before it was approved; ask again if it is still needed.")
    if claimed:
        approval_execute(request_pk=request_pk)
    return ApprovalRequest.objects.get(pk=request_pk)


@transaction.atomic
def _decide(
    *, actor: AbstractBaseUser, request_pk: int, decision: str, comment: str, source_ip: str | None
) -> tuple[bool, bool]:
    request = ApprovalRequest.objects.select_for_update().filter(pk=request_pk).first()
    if request is None:
        raise Http404("No such approval request.")
    account = account_get_for_user(user=actor, account_pk=request.account_id, min_role=Role.APPROVER, enabled_only=True)
    if request.requester_id == actor.pk:
        raise PermissionDenied("You cannot decide on your own request; another approver must.")
    if request.status != Status.PENDING:
        raise ApprovalClosed(f"This request is already {request.get_status_display().lower()}.")
    now = timezone.now()
    if request.expires_at <= now:
        _mark_expired(request, account=account)
        return False, True
    try:
        with transaction.atomic():
            ApprovalDecision.objects.create(request=request, approver=actor, decision=decision, comment=comment)
    except IntegrityError:
        raise ApprovalClosed("You have already decided on this request; each approver counts once.") from None
    _audit(request, f"approval.{decision}", actor=actor, account=account, source_ip=source_ip, comment=comment)
    claimed = False
    if decision == Decision.REJECT:
        ApprovalRequest.objects.filter(pk=request.pk, status=Status.PENDING).update(status=Status.REJECTED)
        _closed_after_commit(request)
    else:
        approvals = _valid_approvals(request)
        if approvals >= request.approvals_required:
            # The claim: one row changes for exactly one caller, whatever else runs concurrently.
            claimed = (
                ApprovalRequest.objects.filter(pk=request.pk, status=Status.PENDING, expires_at__gt=now).update(
                    status=Status.EXECUTING, claimed_at=now
                )
                == 1
            )
    request.refresh_from_db()
    notify.after_commit(request, decision, actor=actor, comment=comment)
    return claimed, False


def _valid_approvals(request: ApprovalRequest) -> int:
    """Approvals that still count: from people who still hold the approver role on the account
    (an approver demoted or removed since their click no longer counts)."""
    entitled = Q(approver__is_superuser=True, approver__is_active=True) | Q(
        approver__aws_memberships__account_id=request.account_id,
        approver__aws_memberships__role__gte=Role.APPROVER,
        approver__is_active=True,
    )
    return request.decisions.filter(entitled, decision=Decision.APPROVE).values("approver").distinct().count()


def _mark_expired(request: ApprovalRequest, *, account: AwsAccount) -> None:
    changed = ApprovalRequest.objects.filter(
        pk=request.pk, status=Status.PENDING, expires_at__lte=timezone.now()
    ).update(status=Status.EXPIRED)
    if changed:
        _audit(request, "approval.expire", actor=None, account=account)
        request.status = Status.EXPIRED
        notify.after_commit(request, "expired", actor=None)
        _closed_after_commit(request)


def approvals_expire_due() -> int:
    """Mark pending requests whose time ran out as expired, each audited (`approval.expire`).

    Pages already show such a request as expired; this records when it happened, in the trail
    and for the requester's live page, without waiting for somebody to click on it. Each row
    changes by a conditional update, so an approval that landed first wins.
    """
    expired = 0
    due = ApprovalRequest.objects.filter(status=Status.PENDING, expires_at__lte=timezone.now())
    for request in due.select_related("account"):
        with transaction.atomic():
            before = request.status
            _mark_expired(request, account=request.account)
            expired += request.status != before
    return expired


def approval_execute(*, request_pk: int) -> ApprovalRequest:
    """Run the executor of a request this caller claimed (status EXECUTING), then record the result.

    Called only by the caller whose conditional UPDATE set EXECUTING (or who created the row in
    that state), and outside any transaction of its own: AWS calls hold no database locks.
    """
    request = ApprovalRequest.objects.select_related("account", "requester").get(pk=request_pk)
    if request.status != Status.EXECUTING:
        raise ApprovalClosed(f"Request #{request.pk} is {request.status}, not claimed for execution.")
    if not request.account.is_enabled:
        outcome = registry.Outcome(
            ok=False, text=f"{request.account.name} is disabled; nothing was done. Enable it and ask again."
        )
    else:
        outcome = _run_executor(request)
    with transaction.atomic():
        status = Status.EXECUTED if outcome.ok else Status.FAILED
        ApprovalRequest.objects.filter(pk=request.pk, status=Status.EXECUTING).update(
            status=status, result=outcome.text, executed_at=timezone.now()
        )
        request.refresh_from_db()
        _audit(
            request,
            "approval.executed" if outcome.ok else "approval.failed",
            actor=request.requester,
            account=request.account,
            result=outcome.text,
        )
        notify.after_commit(request, "executed" if outcome.ok else "failed", actor=None)
        if not outcome.ok:
            _closed_after_commit(request)
    return request


def _run_executor(request: ApprovalRequest) -> registry.Outcome:
    try:
        return registry.get(request.action).executor(request)
    except Exception as exc:  # the executor's failure is the request's result, never a 500
        logger.exception("executor of approval request %s failed", request.pk)
        return registry.Outcome(ok=False, text=f"The action failed: {exc}")


ABANDONED_AFTER = timedelta(minutes=15)


def approval_fail_abandoned(*, older_than: timedelta = ABANDONED_AFTER) -> int:
    """Fail requests claimed for execution long ago whose process died before recording a result.

    No action takes anywhere near this long; the outcome is unknown, so the result says to check
    ECS before asking again. Each row changes by a conditional update, so a result recorded in
    the meantime always wins.
    """
    cutoff = timezone.now() - older_than
    failed = 0
    for request in ApprovalRequest.objects.filter(status=Status.EXECUTING, claimed_at__lt=cutoff).select_related(
        "account"
    ):
        with transaction.atomic():
            changed = ApprovalRequest.objects.filter(
                pk=request.pk, status=Status.EXECUTING, claimed_at__lt=cutoff
            ).update(
                status=Status.FAILED,
                result="The portal stopped while running this action, so its outcome is unknown. "
                "Check the target in AWS before asking again.",
                executed_at=timezone.now(),
            )
            if changed:
                request.refresh_from_db()
                _audit(request, "approval.abandoned", actor=None, account=request.account)
                notify.after_commit(request, "failed", actor=None)
                _closed_after_commit(request)
                failed += 1
    return failed


@transaction.atomic
def approval_cancel(*, actor: AbstractBaseUser, request_pk: int, source_ip: str | None = None) -> ApprovalRequest:
    request = ApprovalRequest.objects.select_for_update().filter(pk=request_pk).first()
    if request is None:
        raise Http404("No such approval request.")
    account = account_get_for_user(user=actor, account_pk=request.account_id)
    if request.requester_id != actor.pk:
        raise PermissionDenied("Only the person who asked can cancel a request.")
    changed = ApprovalRequest.objects.filter(
        pk=request.pk, status=Status.PENDING, expires_at__gt=timezone.now()
    ).update(status=Status.CANCELLED)
    if not changed:
        raise ApprovalClosed(f"This request is already {request.shown_status}; there is nothing to cancel.")
    request.refresh_from_db()
    _audit(request, "approval.cancel", actor=actor, account=account, source_ip=source_ip)
    notify.after_commit(request, "cancelled", actor=actor)
    _closed_after_commit(request)
    return request


@transaction.atomic
def approval_acknowledge(*, actor: AbstractBaseUser, request_pk: int, source_ip: str | None = None) -> None:
    """An approver has seen a break-glass action; it stops counting in their inbox."""
    request = ApprovalRequest.objects.filter(pk=request_pk).first()
    if request is None:
        raise Http404("No such approval request.")
    account = account_get_for_user(user=actor, account_pk=request.account_id, min_role=Role.APPROVER)
    if not request.break_glass:
        raise ApprovalClosed("Only break-glass actions are acknowledged.")
    _, created = BreakGlassAck.objects.get_or_create(request=request, user=actor)
    if created:
        _audit(request, "approval.acknowledge", actor=actor, account=account, source_ip=source_ip)
        notify.after_commit(request, "acknowledged", actor=actor, webhook=False)
