from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from ecsportal.approvals import services
from ecsportal.approvals.models import ApprovalDecision, ApprovalRequest, Status
from ecsportal.audit.models import AuditEvent
from ecsportal.aws import sessions
from ecsportal.stops.services import stop_request
from tests.approvals.lab import LAB_REGION, task_state

pytestmark = pytest.mark.django_db


def _ask(cast, stop_target, reason: str = "runaway memory", **kwargs):
    target = stop_target(cast.operator)
    return stop_request(actor=cast.operator, target=target, reason=reason, **kwargs), target


def test_a_stop_request_waits_for_approval(cast, stop_target, stop_calls):
    request, target = _ask(cast, stop_target)
    assert request.status == Status.PENDING
    assert request.approvals_required == 1
    assert request.target["task_arn"] == target.task.arn
    assert task_state(target.task.arn).last_status == "RUNNING"
    assert stop_calls == []
    assert AuditEvent.objects.filter(action="approval.request", details__request=request.pk).exists()


def test_a_reason_is_required(cast, stop_target):
    with pytest.raises(ValidationError):
        _ask(cast, stop_target, reason="   ")
    assert not ApprovalRequest.objects.exists()


def test_a_viewer_cannot_request_a_stop(cast, stop_target):
    target = stop_target(cast.operator)
    with pytest.raises(PermissionDenied):
        stop_request(actor=cast.viewer, target=target, reason="curious")
    assert not ApprovalRequest.objects.exists()


def test_the_requester_cannot_approve_their_own_request(cast, stop_target, stop_calls):
    request, _ = _ask(cast, stop_target)
    with pytest.raises(PermissionDenied):
        services.approval_decide(actor=cast.operator, request_pk=request.pk, decision="approve")
    request.refresh_from_db()
    assert request.status == Status.PENDING
    assert not ApprovalDecision.objects.exists()
    assert stop_calls == []


def test_an_admin_requester_cannot_approve_their_own_request_either(cast, stop_target, lab):
    target = stop_target(cast.admin)
    request = stop_request(actor=cast.admin, target=target, reason="mine")
    with pytest.raises(PermissionDenied):
        services.approval_decide(actor=cast.admin, request_pk=request.pk, decision="approve")
    assert ApprovalRequest.objects.get(pk=request.pk).status == Status.PENDING


def test_an_approval_stops_the_task_once_with_who_and_why(cast, stop_target, stop_calls):
    request, target = _ask(cast, stop_target, reason="leaking file handles")
    done = services.approval_decide(actor=cast.approver, request_pk=request.pk, decision="approve", comment="ok")
    assert done.status == Status.EXECUTED
    assert done.executed_at is not None
    state = task_state(target.task.arn)
    assert state.last_status == "STOPPED"
    assert state.stopped_reason == (
        f"ecsportal #{request.pk}: leaking file handles (requested by operator, approved by approver)"
    )
    assert "stopped" in done.result
    assert stop_calls == [target.task.arn]
    actions = set(AuditEvent.objects.filter(details__request=request.pk).values_list("action", flat=True))
    assert {"approval.request", "approval.approve", "approval.executed"} <= actions


def test_with_two_required_one_approval_does_not_run_it_and_the_second_approver_does(
    cast, stop_target, stop_calls, lab
):
    lab.approvals_for_stop = 2
    lab.save()
    request, target = _ask(cast, stop_target)
    first = services.approval_decide(actor=cast.approver, request_pk=request.pk, decision="approve")
    assert first.status == Status.PENDING
    assert stop_calls == []
    second = services.approval_decide(actor=cast.approver2, request_pk=request.pk, decision="approve")
    assert second.status == Status.EXECUTED
    assert stop_calls == [target.task.arn]
    assert task_state(target.task.arn).stopped_reason.endswith(
        "(requested by operator, approved by approver, approver2)"
    )


def test_each_approver_counts_once(cast, stop_target, stop_calls, lab):
    lab.approvals_for_stop = 2
    lab.save()
    request, _ = _ask(cast, stop_target)
    services.approval_decide(actor=cast.approver, request_pk=request.pk, decision="approve")
    with pytest.raises(services.ApprovalClosed):
        services.approval_decide(actor=cast.approver, request_pk=request.pk, decision="approve")
    assert ApprovalRequest.objects.get(pk=request.pk).status == Status.PENDING
    assert ApprovalDecision.objects.filter(request=request).count() == 1
    assert stop_calls == []


def test_a_viewer_cannot_approve(cast, stop_target, stop_calls):
    request, _ = _ask(cast, stop_target)
    with pytest.raises(PermissionDenied):
        services.approval_decide(actor=cast.viewer, request_pk=request.pk, decision="approve")
    assert ApprovalRequest.objects.get(pk=request.pk).status == Status.PENDING
    assert stop_calls == []


def test_an_outsider_cannot_approve(cast, stop_target, stop_calls):
    from django.http import Http404

    request, _ = _ask(cast, stop_target)
    with pytest.raises(Http404):
        services.approval_decide(actor=cast.outsider, request_pk=request.pk, decision="approve")
    assert ApprovalRequest.objects.get(pk=request.pk).status == Status.PENDING
    assert stop_calls == []


def test_a_rejected_request_never_runs(cast, stop_target, stop_calls):
    request, target = _ask(cast, stop_target)
    rejected = services.approval_decide(actor=cast.approver, request_pk=request.pk, decision="reject", comment="no")
    assert rejected.status == Status.REJECTED
    with pytest.raises(services.ApprovalClosed):
        services.approval_decide(actor=cast.approver2, request_pk=request.pk, decision="approve")
    assert ApprovalRequest.objects.get(pk=request.pk).status == Status.REJECTED
    assert stop_calls == []
    assert task_state(target.task.arn).last_status == "RUNNING"


def test_a_cancelled_request_never_runs(cast, stop_target, stop_calls):
    request, target = _ask(cast, stop_target)
    services.approval_cancel(actor=cast.operator, request_pk=request.pk)
    with pytest.raises(services.ApprovalClosed):
        services.approval_decide(actor=cast.approver, request_pk=request.pk, decision="approve")
    assert ApprovalRequest.objects.get(pk=request.pk).status == Status.CANCELLED
    assert stop_calls == []
    assert task_state(target.task.arn).last_status == "RUNNING"


def test_only_the_requester_can_cancel(cast, stop_target):
    request, _ = _ask(cast, stop_target)
    with pytest.raises(PermissionDenied):
        services.approval_cancel(actor=cast.approver, request_pk=request.pk)
    assert ApprovalRequest.objects.get(pk=request.pk).status == Status.PENDING


def test_an_expired_request_can_no_longer_be_approved_or_run(cast, stop_target, stop_calls):
    request, target = _ask(cast, stop_target)
    ApprovalRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(services.ApprovalClosed, match="expired"):
        services.approval_decide(actor=cast.approver, request_pk=request.pk, decision="approve")
    assert ApprovalRequest.objects.get(pk=request.pk).status == Status.EXPIRED
    assert stop_calls == []
    assert task_state(target.task.arn).last_status == "RUNNING"
    assert AuditEvent.objects.filter(action="approval.expire", details__request=request.pk).exists()


def test_the_expiry_follows_the_accounts_policy(cast, stop_target, lab):
    lab.approval_ttl_minutes = 15
    lab.save()
    request, _ = _ask(cast, stop_target)
    assert timedelta(minutes=14) < request.expires_at - request.created_at <= timedelta(minutes=15, seconds=5)


def test_break_glass_stops_at_once_and_is_marked(cast, stop_target, stop_calls):
    target = stop_target(cast.admin)
    request = stop_request(
        actor=cast.admin, target=target, reason="crash loop", break_glass=True, break_glass_reason="site down"
    )
    assert request.status == Status.EXECUTED
    assert request.break_glass and request.break_glass_reason == "site down"
    assert stop_calls == [target.task.arn]
    assert task_state(target.task.arn).stopped_reason == (
        f"ecsportal #{request.pk}: crash loop (requested by admin, break-glass, no approval)"
    )
    assert AuditEvent.objects.filter(action="approval.break_glass", details__break_glass=True).exists()


def test_break_glass_without_a_reason_is_refused(cast, stop_target, stop_calls):
    target = stop_target(cast.admin)
    with pytest.raises(ValidationError):
        stop_request(actor=cast.admin, target=target, reason="crash loop", break_glass=True, break_glass_reason=" ")
    assert not ApprovalRequest.objects.exists()
    assert stop_calls == []


def test_an_operator_cannot_break_glass(cast, stop_target, stop_calls):
    target = stop_target(cast.operator)
    with pytest.raises(PermissionDenied):
        stop_request(actor=cast.operator, target=target, reason="x", break_glass=True, break_glass_reason="urgent")
    assert stop_calls == []


def test_a_policy_of_zero_approvals_stops_at_once_and_is_audited(cast, stop_target, stop_calls, lab):
    lab.approvals_for_stop = 0
    lab.save()
    request, target = _ask(cast, stop_target, reason="scale test")
    assert request.status == Status.EXECUTED
    assert not request.break_glass
    assert stop_calls == [target.task.arn]
    assert task_state(target.task.arn).stopped_reason.endswith("(requested by operator, no approval required)")
    assert AuditEvent.objects.filter(action="approval.executed", details__request=request.pk).exists()


def test_a_stoptask_failure_marks_the_request_failed_with_awss_message(cast, stop_target, stop_calls, lab):
    """moto cannot deny IAM actions; AWS's AccessDenied answer is injected at botocore's seam."""
    from botocore.awsrequest import AWSResponse

    request, target = _ask(cast, stop_target)
    client = sessions.client(lab.aws_config(), "ecs", LAB_REGION)

    def deny(**_):
        body = {
            "Error": {
                "Code": "AccessDeniedException",
                "Message": "User: arn:aws:sts::123456789012:assumed-role/ecsportal is not authorized to perform: "
                "ecs:StopTask",
            },
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return AWSResponse("http://local", 400, {}, None), body

    client.meta.events.register("before-call.ecs.StopTask", deny, unique_id="deny-stop")
    try:
        failed = services.approval_decide(actor=cast.approver, request_pk=request.pk, decision="approve")
    finally:
        client.meta.events.unregister("before-call.ecs.StopTask", unique_id="deny-stop")
    assert failed.status == Status.FAILED
    assert "Access denied" in failed.result and "ecs:StopTask" in failed.result
    assert task_state(target.task.arn).last_status == "RUNNING"
    assert AuditEvent.objects.filter(action="approval.failed", details__request=request.pk).exists()


def test_a_task_that_stopped_meanwhile_fails_in_words(cast, stop_target, stop_calls, lab_ecs):
    request, target = _ask(cast, stop_target)
    lab_ecs.stop_task(cluster=target.cluster, task=target.task.arn, reason="Scaling activity initiated by deployment")
    stop_calls.clear()
    failed = services.approval_decide(actor=cast.approver, request_pk=request.pk, decision="approve")
    assert failed.status == Status.FAILED
    assert "already stopped" in failed.result
    assert "Scaling activity" in failed.result
    assert stop_calls == []


def test_a_task_that_vanished_fails_as_not_found(cast, stop_target, stop_calls):
    request, _ = _ask(cast, stop_target)
    target = dict(request.target, cluster="approvals-lab-gone")
    ApprovalRequest.objects.filter(pk=request.pk).update(target=target)
    failed = services.approval_decide(actor=cast.approver, request_pk=request.pk, decision="approve")
    assert failed.status == Status.FAILED
    assert "Not found" in failed.result
    assert stop_calls == []


def test_a_disabled_account_cannot_be_approved_and_leaves_the_inbox(cast, stop_target, stop_calls, lab):
    from ecsportal.approvals.selectors import inbox_for_user

    request, _ = _ask(cast, stop_target)
    assert [r.pk for r in inbox_for_user(user=cast.approver)[0]] == [request.pk]
    lab.is_enabled = False
    lab.save()
    with pytest.raises(PermissionDenied):
        services.approval_decide(actor=cast.approver, request_pk=request.pk, decision="approve")
    assert ApprovalRequest.objects.get(pk=request.pk).status == Status.PENDING
    assert inbox_for_user(user=cast.approver)[0] == []
    assert stop_calls == []


def test_a_request_claimed_before_its_account_was_disabled_does_nothing(cast, stop_target, stop_calls, lab):
    request, target = _ask(cast, stop_target)
    ApprovalRequest.objects.filter(pk=request.pk).update(status=Status.EXECUTING)
    lab.is_enabled = False
    lab.save()
    done = services.approval_execute(request_pk=request.pk)
    assert done.status == Status.FAILED
    assert "disabled" in done.result
    assert stop_calls == []
    assert task_state(target.task.arn).last_status == "RUNNING"


def test_an_approver_demoted_after_approving_no_longer_counts(cast, stop_target, stop_calls, lab):
    from ecsportal.accounts.models import Membership, Role

    lab.approvals_for_stop = 2
    lab.save()
    request, _ = _ask(cast, stop_target)
    services.approval_decide(actor=cast.approver, request_pk=request.pk, decision="approve")
    Membership.objects.filter(user=cast.approver, account=lab).update(role=Role.VIEWER)
    after = services.approval_decide(actor=cast.approver2, request_pk=request.pk, decision="approve")
    assert after.status == Status.PENDING
    assert stop_calls == []


def test_a_pending_stop_blocks_a_second_request_on_the_same_account_only(cast, stop_target, lab):
    import dataclasses

    from ecsportal.accounts.models import AwsAccount, Membership, Role

    request, target = _ask(cast, stop_target)
    with pytest.raises(services.ApprovalClosed, match=f"#{request.pk}"):
        stop_request(actor=cast.operator, target=target, reason="again")
    # Another portal account for the same AWS account (another team's view of it).
    twin = AwsAccount.objects.create(name="Lab twin", account_id=lab.account_id, regions=lab.regions)
    Membership.objects.create(user=cast.operator, account=twin, role=Role.OPERATOR)
    theirs = stop_request(actor=cast.operator, target=dataclasses.replace(target, account=twin), reason="ours")
    assert theirs.pk != request.pk and theirs.account_id == twin.pk


def test_an_execution_abandoned_by_a_dead_process_is_failed_with_an_unknown_outcome(cast, stop_target, stop_calls, lab):
    old, _ = _ask(cast, stop_target)
    fresh, _ = _ask(cast, stop_target)
    long_ago = timezone.now() - timedelta(hours=1)
    ApprovalRequest.objects.filter(pk=old.pk).update(status=Status.EXECUTING, claimed_at=long_ago)
    ApprovalRequest.objects.filter(pk=fresh.pk).update(status=Status.EXECUTING, claimed_at=timezone.now())

    assert services.approval_fail_abandoned() == 1

    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.status == Status.FAILED and "outcome is unknown" in old.result
    assert fresh.status == Status.EXECUTING  # still running somewhere: left alone
    assert AuditEvent.objects.filter(action="approval.abandoned", details__request=old.pk).exists()
    assert stop_calls == []


def test_a_claim_records_when_it_was_made(cast, stop_target, lab):
    request, _ = _ask(cast, stop_target)
    before = timezone.now()
    done = services.approval_decide(actor=cast.approver, request_pk=request.pk, decision="approve")
    assert done.status == Status.EXECUTED
    assert done.claimed_at is not None and done.claimed_at >= before
