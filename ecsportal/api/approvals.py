"""Stops (request, read) and approvals (my inbox, my requests, read, decide).

A stop is an approval request for the `ecs.stop_task` action, through `stops.services.stop_request`;
deciding is `approvals.services.approval_decide`, for personal tokens only: an approval is a
person's judgement, and a service token stands for no person.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest
from django.urls import reverse
from ninja import Field, Query, Router, Schema
from ninja.responses import Status as HttpStatus

from ecsportal.accounts.models import Role
from ecsportal.api import schemas as s
from ecsportal.api.targets import account_for_ref, region_of_cluster
from ecsportal.apitokens.models import TokenKind
from ecsportal.approvals.models import ApprovalRequest, Decision, Status
from ecsportal.approvals.selectors import approval_decisions, approval_get_for_user, inbox_for_user, requests_for_user
from ecsportal.approvals.services import approval_decide
from ecsportal.audit.services import client_ip
from ecsportal.stops.executor import ACTION as STOP_ACTION
from ecsportal.stops.selectors import stop_target_for_user
from ecsportal.stops.services import stop_request

router = Router(tags=["approvals"])


def approval_out(request: HttpRequest, approval: ApprovalRequest) -> dict:
    decisions = approval_decisions(request=approval)
    return {
        "id": approval.pk,
        "url": request.build_absolute_uri(reverse("approvals:detail", args=[approval.pk])),
        "action": approval.action,
        "target": approval.target_label,
        "account": approval.account.name,
        "requester": approval.requester.get_username(),
        "reason": approval.reason,
        "status": Status.EXPIRED if approval.is_expired else approval.status,
        "approvals_required": approval.approvals_required,
        "approvals": sum(1 for d in decisions if d.decision == Decision.APPROVE),
        "expires_at": approval.expires_at,
        "created_at": approval.created_at,
        "executed_at": approval.executed_at,
        "result": approval.result,
        "decisions": [
            {
                "approver": d.approver.get_username(),
                "decision": d.decision,
                "comment": d.comment,
                "created_at": d.created_at,
            }
            for d in decisions
        ],
    }


@router.post(
    "/stops",
    response={201: s.ApprovalOut},
    tags=["stops"],
    summary="Ask to stop a task (an approval request; it stops once approved)",
)
def stop_create(request: HttpRequest, payload: s.StopIn):
    if payload.task.startswith("arn:"):
        account_pk = account_for_ref(user=request.user, ref=payload.account).pk if payload.account else None
        target = stop_target_for_user(
            user=request.user, account_pk=account_pk, region="", cluster="", task="", task_arn=payload.task, role_arn=""
        )
    else:
        if not (payload.account and payload.cluster):
            raise ValidationError("Name the account and cluster with a task ID, or give the task's ARN.")
        account = account_for_ref(user=request.user, ref=payload.account, min_role=Role.OPERATOR)
        region = region_of_cluster(account=account, region=payload.region, cluster=payload.cluster)
        target = stop_target_for_user(
            user=request.user,
            account_pk=account.pk,
            region=region,
            cluster=payload.cluster,
            task=payload.task,
            task_arn="",
            role_arn="",
        )
    approval = stop_request(actor=request.user, target=target, reason=payload.reason, source_ip=client_ip(request))
    return HttpStatus(201, approval_out(request, approval_get_for_user(user=request.user, pk=approval.pk)))


@router.get("/stops/{stop_id}", response=s.ApprovalOut, tags=["stops"], summary="A stop request and its outcome")
def stop_get(request: HttpRequest, stop_id: int):
    approval = approval_get_for_user(user=request.user, pk=stop_id)
    if approval.action != STOP_ACTION:
        raise Http404("No such stop request.")
    return approval_out(request, approval)


@router.get("/approvals/inbox", response=list[s.ApprovalOut], summary="Requests waiting for my decision")
def inbox(request: HttpRequest):
    waiting, _fyi = inbox_for_user(user=request.user)
    return [approval_out(request, a) for a in waiting]


class MineQuery(Schema):
    status: Status | None = None
    limit: int = Field(50, ge=1, le=200)


@router.get("/approvals/mine", response=list[s.ApprovalOut], summary="Requests I made, newest first")
def mine(request: HttpRequest, q: Query[MineQuery]):
    qs = requests_for_user(user=request.user, status=q.status or "", mine=True).select_related("account", "requester")
    return [approval_out(request, a) for a in qs[: q.limit]]


@router.get("/approvals/{approval_id}", response=s.ApprovalOut, summary="One approval request")
def approval_get(request: HttpRequest, approval_id: int):
    return approval_out(request, approval_get_for_user(user=request.user, pk=approval_id))


@router.post(
    "/approvals/{approval_id}/decision",
    response=s.ApprovalOut,
    summary="Approve or reject (personal tokens of approvers only)",
)
def decide(request: HttpRequest, approval_id: int, payload: s.DecisionIn):
    approval_get_for_user(user=request.user, pk=approval_id)  # 404 for outsiders before anything else
    if request.api_token.kind != TokenKind.PERSONAL:
        raise PermissionDenied("Only a person decides: use a personal token, not a service token.")
    approval = approval_decide(
        actor=request.user,
        request_pk=approval_id,
        decision=payload.decision,
        comment=payload.comment,
        source_ip=client_ip(request),
    )
    return approval_out(request, approval_get_for_user(user=request.user, pk=approval.pk))
