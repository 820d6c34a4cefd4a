from __future__ import annotations

import pytest

from ecsportal.approvals.models import ApprovalRequest, Status
from ecsportal.demo import localaws
from tests.approvals.lab import LAB_CLUSTER, LAB_REGION, task_state

pytestmark = pytest.mark.django_db


def _task_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _picked(lab, arn: str, **extra: str) -> dict[str, str]:
    return {"account": str(lab.pk), "region": LAB_REGION, "cluster": LAB_CLUSTER, "task": _task_id(arn), **extra}


def test_running_tasks_have_a_stop_button_for_operators_only(cast, login, lab, run_task):
    run_task("web")
    url = f"/inventory/{lab.pk}/{LAB_REGION}/{LAB_CLUSTER}/"
    assert "stop-button" in login(cast.operator).get(url).content.decode()
    assert "stop-button" not in login(cast.viewer).get(url).content.decode()


def test_the_task_page_has_a_stop_button_for_operators_only(cast, login, lab, run_task):
    url = f"/inventory/{lab.pk}/{LAB_REGION}/{LAB_CLUSTER}/tasks/{_task_id(run_task('web'))}/"
    assert f"/stops/new/?account={lab.pk}" in login(cast.operator).get(url).content.decode()
    assert "stop-button" not in login(cast.viewer).get(url).content.decode()


def test_the_stop_form_offers_only_accounts_where_one_is_an_operator(cast, login, lab):
    page = login(cast.viewer).get("/stops/new/").content.decode()
    assert "Approvals Lab" not in page
    page = login(cast.operator).get(f"/stops/new/?account={lab.pk}").content.decode()
    assert "Approvals Lab" in page


def test_review_explains_what_happens_to_a_service_task(cast, login, lab, run_task):
    arn = run_task("web")
    page = login(cast.operator).post("/stops/new/", _picked(lab, arn, reason="stuck"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "the service scheduler will start a replacement" in html
    assert "deletes the task&#x27;s tags" in html
    assert "SIGKILL" in html
    assert "Break-glass" not in html  # operators cannot skip approval
    assert not ApprovalRequest.objects.exists()


def test_review_says_a_standalone_task_is_not_replaced(cast, login, lab, run_task):
    arn = run_task("")
    html = login(cast.operator).post("/stops/new/", _picked(lab, arn, reason="done")).content.decode()
    assert "nothing will replace it" in html


def test_confirming_creates_a_pending_request(cast, login, lab, run_task, stop_calls):
    arn = run_task("web")
    answer = login(cast.operator).post("/stops/new/", _picked(lab, arn, reason="stuck", confirmed="1"))
    request = ApprovalRequest.objects.get()
    assert answer["Location"] == f"/approvals/{request.pk}/"
    assert request.status == Status.PENDING
    assert request.target["task_arn"] == arn
    assert stop_calls == []


def test_a_second_request_for_the_same_task_is_refused_while_one_waits(cast, login, lab, run_task):
    arn = run_task("web")
    client = login(cast.operator)
    client.post("/stops/new/", _picked(lab, arn, reason="stuck", confirmed="1"))
    again = client.post("/stops/new/", _picked(lab, arn, reason="stuck", confirmed="1"))
    assert again.status_code == 422
    assert "already waiting for approval" in again.content.decode()
    assert ApprovalRequest.objects.count() == 1


def test_a_pasted_task_arn_is_accepted(cast, login, lab, run_task):
    arn = run_task("web")
    login(cast.operator).post("/stops/new/", {"task_arn": arn, "reason": "pasted", "confirmed": "1"})
    assert ApprovalRequest.objects.get().target["task_arn"] == arn


@pytest.mark.parametrize(
    ("arn", "message"),
    [
        ("not-an-arn", "not an ECS task ARN"),
        (f"arn:aws:ecs:{LAB_REGION}:{localaws.ACCOUNT_A}:task/0123456789abcdef", "old-format task ARN"),
        (f"arn:aws:ecs:{LAB_REGION}:000000000000:task/{LAB_CLUSTER}/abc", "AWS account 000000000000"),
        (f"arn:aws:ecs:eu-north-1:{localaws.ACCOUNT_A}:task/{LAB_CLUSTER}/abc", "eu-north-1 is not one of"),
    ],
)
def test_a_bad_task_arn_is_refused_in_words(cast, login, lab, arn, message):
    page = login(cast.operator).post("/stops/new/", {"account": str(lab.pk), "task_arn": arn, "reason": "x"})
    assert page.status_code == 422
    assert message in page.content.decode()
    assert not ApprovalRequest.objects.exists()


def test_a_task_that_already_stopped_cannot_be_requested(cast, login, lab, run_task, lab_ecs):
    arn = run_task("web")
    lab_ecs.stop_task(cluster=LAB_CLUSTER, task=arn, reason="gone")
    page = login(cast.operator).post("/stops/new/", _picked(lab, arn, reason="x", confirmed="1"))
    assert page.status_code == 422
    assert "already stopped" in page.content.decode()
    assert not ApprovalRequest.objects.exists()


def test_the_role_override_must_be_allowed_by_the_account(cast, login, lab, run_task):
    lab.allowed_role_arns = [f"arn:aws:iam::{localaws.ACCOUNT_A}:role/ecsportal-stopper"]
    lab.save()
    arn = run_task("web")
    client = login(cast.operator)
    form = client.get(f"/stops/new/?account={lab.pk}").content.decode()
    assert "role/ecsportal-stopper" in form
    forged = client.post(
        "/stops/new/",
        _picked(lab, arn, reason="x", confirmed="1", role_arn=f"arn:aws:iam::{localaws.ACCOUNT_A}:role/Admin"),
    )
    assert forged.status_code == 422
    assert "has not allowed this role" in forged.content.decode()
    assert not ApprovalRequest.objects.exists()


def test_an_allowed_role_override_is_used_for_the_stop(cast, login, lab, run_task, stop_calls):
    role = f"arn:aws:iam::{localaws.ACCOUNT_A}:role/ecsportal-stopper"
    lab.allowed_role_arns = [role]
    lab.save()
    arn = run_task("web")
    login(cast.operator).post("/stops/new/", _picked(lab, arn, reason="x", confirmed="1", role_arn=role))
    request = ApprovalRequest.objects.get()
    assert request.target["role_arn"] == role
    login(cast.approver).post(f"/approvals/{request.pk}/decide/", {"decision": "approve"})
    assert ApprovalRequest.objects.get().status == Status.EXECUTED
    assert task_state(arn).last_status == "STOPPED"


def test_an_outsider_cannot_use_another_accounts_task(cast, login, lab, run_task):
    arn = run_task("web")
    assert login(cast.outsider).post("/stops/new/", _picked(lab, arn, reason="x")).status_code == 404
    page = login(cast.outsider).post("/stops/new/", {"task_arn": arn, "reason": "x"})
    assert page.status_code == 422
    assert not ApprovalRequest.objects.exists()


def test_break_glass_by_an_admin_needs_a_reason_then_stops_at_once(cast, login, lab, run_task, stop_calls):
    arn = run_task("web")
    client = login(cast.admin)
    review = client.post("/stops/new/", _picked(lab, arn, reason="x")).content.decode()
    assert "Break-glass" in review
    refused = client.post("/stops/new/", _picked(lab, arn, reason="x", confirmed="1", break_glass="on"))
    assert refused.status_code == 422
    assert "needs a written reason" in refused.content.decode()
    assert not ApprovalRequest.objects.exists()
    client.post(
        "/stops/new/", _picked(lab, arn, reason="x", confirmed="1", break_glass="on", break_glass_reason="outage")
    )
    request = ApprovalRequest.objects.get()
    assert request.break_glass and request.status == Status.EXECUTED
    assert stop_calls == [arn]


def test_the_stop_picker_fragment_carries_the_accounts_roles(cast, login):
    page = login(cast.operator).get(f"/stops/pick/?account={cast.staging.pk}", HTTP_HX_REQUEST="true")
    html = page.content.decode()
    assert 'hx-swap-oob="true"' in html
    assert localaws.ROLE_B_READONLY in html


def test_an_empty_post_asks_for_the_task_instead_of_failing(cast, login, lab):
    answer = login(cast.operator).post("/stops/new/", {})
    assert answer.status_code == 422
    assert "Pick account, region, cluster and task, or paste a task ARN." in answer.content.decode()
    assert "Say why this task should be stopped." in answer.content.decode()
    assert not ApprovalRequest.objects.exists()


def test_someone_operator_nowhere_is_told_stopping_needs_the_operator_role(cast, login, lab):
    for method in ("get", "post"):
        answer = getattr(login(cast.viewer), method)("/stops/new/")
        assert answer.status_code == 403
        html = answer.content.decode()
        assert "Stopping a task needs the operator role on its account." in html
        assert "Review the stop" not in html and "Pick account" not in html
    assert not ApprovalRequest.objects.exists()


def test_anonymous_users_are_sent_to_log_in_before_the_stop_form(client):
    assert client.get("/stops/new/")["Location"].startswith("/login/")


def test_an_outsider_who_operates_elsewhere_gets_the_form_without_our_accounts(cast, login, lab):
    page = login(cast.outsider).get("/stops/new/")  # admin of Other Team only
    assert page.status_code == 200
    html = page.content.decode()
    assert "Review the stop" in html and "Approvals Lab" not in html and "Acme Production" not in html
