"""Shell access: the account's policy, access requests through the approval gate, grants, and
`shell_permit` (the contract the shell runtime calls), against the local AWS's lab cluster."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from ecsportal.accounts.models import AwsAccount, Membership, Role, ShellAccess
from ecsportal.approvals.models import ApprovalRequest, Status
from ecsportal.approvals.services import approval_decide
from ecsportal.audit.models import AuditEvent
from ecsportal.shells.models import ShellGrant
from ecsportal.shells.policy import shell_grant_use, shell_permit
from tests.approvals.lab import LAB_CLUSTER, LAB_REGION

pytestmark = pytest.mark.django_db


@pytest.fixture
def shell_lab(lab):
    lab.shell_access = ShellAccess.REQUEST
    lab.save()
    return lab


def _id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _permit(user, account, arn: str, container: str = "app", service: str = "web"):
    return shell_permit(user, account, cluster=LAB_CLUSTER, service=service, task_arn=arn, container=container)


def _ask(client, account, arn: str, **fields):
    data = {
        "account": account.pk,
        "region": LAB_REGION,
        "cluster": LAB_CLUSTER,
        "task": _id(arn),
        "container": "app",
        "scope": "container",
        "minutes": "30",
        "reason": "debug the stuck worker",
        **fields,
    }
    return client.post("/shells/access/new/", data)


def test_the_default_policy_follows_the_production_mark(cast):
    prod = AwsAccount(name="p", is_production=True)
    staging = AwsAccount(name="s", is_production=False)
    assert prod.effective_shell_access == ShellAccess.REQUEST
    assert staging.effective_shell_access == ShellAccess.OPERATORS
    assert AwsAccount(name="x", is_production=True, shell_access="operators").effective_shell_access == "operators"


def test_operators_allowed_viewers_refused_off_refused(cast, lab, run_task):
    arn = run_task("web")
    permit = _permit(cast.operator, lab, arn)
    assert permit.allowed and permit.expires_at is None and permit.shell_command == "auto"
    assert not permit.moderated and not permit.record_input

    refused = _permit(cast.viewer, lab, arn)
    assert not refused.allowed and "operator role" in refused.reason and refused.request_url is None
    assert not _permit(cast.outsider, lab, arn).allowed

    lab.shell_access = ShellAccess.OFF
    lab.save()
    off = _permit(cast.operator, lab, arn)
    assert not off.allowed and "turned off" in off.reason and off.request_url is None


def test_a_request_account_refuses_without_a_grant_and_links_the_prefilled_form(cast, login, shell_lab, run_task):
    arn = run_task("web")
    permit = _permit(cast.operator, shell_lab, arn)
    assert not permit.allowed
    assert "approved access request" in permit.reason and "1 approval" in permit.reason
    assert permit.request_url.startswith("/shells/access/new/?")
    page = html.unescape(login(cast.operator).get(permit.request_url).content.decode())
    assert _id(arn) in page and 'value="app" selected' in page and "Any task of service" in page


def test_request_approve_grant_then_the_permit_allows_that_container_until_it_expires(cast, login, shell_lab, run_task):
    arn = run_task("web")
    answer = _ask(login(cast.operator), shell_lab, arn, minutes="20")
    assert answer.status_code == 302
    request = ApprovalRequest.objects.get(action="ecs.shell_access")
    assert request.status == Status.PENDING and request.approvals_required == 1
    assert request.target["minutes"] == 20 and request.target["container"] == "app"
    assert not _permit(cast.operator, shell_lab, arn).allowed  # pending is not granted

    with pytest.raises(PermissionDenied):  # no self-approval
        approval_decide(actor=cast.operator, request_pk=request.pk, decision="approve")

    detail = html.unescape(login(cast.approver).get(f"/approvals/{request.pk}/").content.decode())
    assert "may open interactive shells" in detail and "for 20 minutes" in detail

    login(cast.approver).post(f"/approvals/{request.pk}/decide/", {"decision": "approve"})
    request.refresh_from_db()
    assert request.status == Status.EXECUTED, request.result
    grant = ShellGrant.objects.get(request=request)
    assert grant.user == cast.operator and grant.container == "app" and grant.task_arn == arn
    assert timedelta(minutes=19) < grant.expires_at - timezone.now() <= timedelta(minutes=20)

    permit = _permit(cast.operator, shell_lab, arn)
    assert permit.allowed and permit.expires_at == grant.expires_at and permit.grant_pk == grant.pk
    assert not _permit(cast.operator, shell_lab, arn, container="sidecar").allowed  # another container
    assert not _permit(cast.operator, shell_lab, run_task("web")).allowed  # another task of the service
    assert not _permit(cast.approver, shell_lab, arn).allowed  # someone else

    page = html.unescape(
        login(cast.operator)
        .get(f"/inventory/{shell_lab.pk}/{LAB_REGION}/{LAB_CLUSTER}/tasks/{_id(arn)}/")
        .content.decode()
    )
    local = timezone.localtime(grant.expires_at)
    text = " ".join(re.sub(r"<[^>]+>", "", page).split())
    assert f"You have shell access to container app until {local:%H:%M} UTC." in text

    ShellGrant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert not _permit(cast.operator, shell_lab, arn).allowed


def test_a_service_grant_covers_every_task_of_that_service(cast, login, shell_lab, run_task):
    arn = run_task("web")
    _ask(login(cast.operator), shell_lab, arn, scope="service")
    request = ApprovalRequest.objects.get(action="ecs.shell_access")
    approval_decide(actor=cast.approver, request_pk=request.pk, decision="approve")
    other = run_task("web")
    assert _permit(cast.operator, shell_lab, other, container="app").allowed
    assert not _permit(cast.operator, shell_lab, other, service="api").allowed


def test_a_grant_stops_counting_when_the_role_is_lowered(cast, shell_lab, run_task, login):
    arn = run_task("web")
    _ask(login(cast.operator), shell_lab, arn)
    approval_decide(
        actor=cast.approver, request_pk=ApprovalRequest.objects.get(action="ecs.shell_access").pk, decision="approve"
    )
    assert _permit(cast.operator, shell_lab, arn).allowed
    Membership.objects.filter(user=cast.operator, account=shell_lab).update(role=Role.VIEWER)
    assert not _permit(cast.operator, shell_lab, arn).allowed


def test_break_glass_by_an_admin_grants_at_once_marked_and_operators_cannot(cast, login, shell_lab, run_task):
    arn = run_task("web")
    answer = _ask(login(cast.operator), shell_lab, arn, break_glass="on", break_glass_reason="outage")
    assert answer.status_code == 422 and "admin role" in html.unescape(answer.content.decode())
    assert not ApprovalRequest.objects.exists()

    answer = _ask(login(cast.admin), shell_lab, arn, break_glass="on", break_glass_reason="")
    assert answer.status_code == 422 and "written reason" in answer.content.decode()

    answer = _ask(
        login(cast.admin), shell_lab, arn, break_glass="on", break_glass_reason="site down, no approver awake"
    )
    assert answer.status_code == 302
    request = ApprovalRequest.objects.get(action="ecs.shell_access")
    assert request.break_glass and request.status == Status.EXECUTED
    assert _permit(cast.admin, shell_lab, arn).allowed
    assert AuditEvent.objects.filter(action="approval.break_glass", details__action="ecs.shell_access").exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"minutes": "100000"}, "At most 240 minutes"),
        ({"minutes": ""}, "for how many minutes"),
        ({"reason": ""}, "Say why you need a shell here."),
        ({"container": "nope"}, "Choose one of this task's containers: app"),
        ({"scope": "everything"}, "Select a valid choice"),
    ],
)
def test_bad_input_gets_a_clear_error_and_creates_nothing(cast, login, shell_lab, run_task, fields, message):
    answer = _ask(login(cast.operator), shell_lab, run_task("web"), **fields)
    assert answer.status_code == 422
    assert message in html.unescape(answer.content.decode())
    assert not ApprovalRequest.objects.exists()


def test_a_standalone_task_cannot_be_asked_for_by_service(cast, login, shell_lab, run_task):
    answer = _ask(login(cast.operator), shell_lab, run_task(""), scope="service")
    assert answer.status_code == 422 and "not part of a service" in html.unescape(answer.content.decode())


def test_no_request_on_an_operators_account_and_a_second_pending_one_is_refused(cast, login, lab, run_task):
    arn = run_task("web")
    answer = _ask(login(cast.operator), lab, arn)
    assert answer.status_code == 422 and "no request is needed" in answer.content.decode()
    lab.shell_access = ShellAccess.REQUEST
    lab.save()
    assert _ask(login(cast.operator), lab, arn).status_code == 302
    again = _ask(login(cast.operator), lab, arn)
    assert again.status_code == 422 and "already waiting" in again.content.decode()


def test_viewers_and_outsiders_cannot_ask(cast, login, shell_lab, run_task):
    arn = run_task("web")
    assert _ask(login(cast.viewer), shell_lab, arn).status_code == 403  # an operator nowhere
    assert not ApprovalRequest.objects.exists()
    assert login(cast.outsider).get("/shells/access/new/").status_code == 200  # admin elsewhere: the page, no task
    assert _ask(login(cast.outsider), shell_lab, arn).status_code == 404  # the gate: not their account


def test_access_used_is_audited_and_the_first_use_recorded(cast, login, shell_lab, run_task):
    arn = run_task("web")
    _ask(login(cast.operator), shell_lab, arn)
    approval_decide(
        actor=cast.approver, request_pk=ApprovalRequest.objects.get(action="ecs.shell_access").pk, decision="approve"
    )
    permit = _permit(cast.operator, shell_lab, arn)
    shell_grant_use(cast.operator, permit, account=shell_lab, target=f"{LAB_CLUSTER}/{_id(arn)} app")
    shell_grant_use(cast.operator, permit, account=shell_lab, target=f"{LAB_CLUSTER}/{_id(arn)} app")
    events = AuditEvent.objects.filter(action="shell.access_used").order_by("pk")
    assert [e.details["first_use"] for e in events] == [True, False]
    assert ShellGrant.objects.get().first_used_at is not None
    assert AuditEvent.objects.filter(action="approval.request", details__action="ecs.shell_access").exists()
    assert AuditEvent.objects.filter(action="approval.approve", details__action="ecs.shell_access").exists()


def test_the_executor_refuses_when_the_requester_lost_the_operator_role(cast, login, shell_lab, run_task):
    arn = run_task("web")
    _ask(login(cast.operator), shell_lab, arn)
    Membership.objects.filter(user=cast.operator, account=shell_lab).update(role=Role.VIEWER)
    request = approval_decide(
        actor=cast.approver, request_pk=ApprovalRequest.objects.get(action="ecs.shell_access").pk, decision="approve"
    )
    assert request.status == Status.FAILED and "no longer an operator" in request.result
    assert not ShellGrant.objects.exists()
