from __future__ import annotations

import pytest

from ecsportal.approvals.models import ApprovalDecision, ApprovalRequest, Status
from ecsportal.stops.services import stop_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending(cast, stop_target):
    return stop_request(actor=cast.operator, target=stop_target(cast.operator), reason="stuck consumer")


def test_anonymous_users_are_sent_to_log_in(client, pending):
    for url in ("/approvals/", "/approvals/inbox/", f"/approvals/{pending.pk}/"):
        assert client.get(url)["Location"].startswith("/login/")
    assert client.post(f"/approvals/{pending.pk}/decide/", {"decision": "approve"}).status_code == 302
    assert ApprovalRequest.objects.get(pk=pending.pk).status == Status.PENDING


def test_the_requester_sees_the_request_but_no_approve_button(cast, login, pending):
    page = login(cast.operator).get(f"/approvals/{pending.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "stuck consumer" in html
    assert 'value="approve"' not in html
    assert "someone else with the approver role must decide" in html
    assert "Cancel request" in html
    assert "the service scheduler will start a replacement" in html


def test_self_approval_is_refused_with_403_and_changes_nothing(cast, login, pending, stop_calls):
    answer = login(cast.operator).post(f"/approvals/{pending.pk}/decide/", {"decision": "approve"})
    assert answer.status_code == 403
    assert ApprovalRequest.objects.get(pk=pending.pk).status == Status.PENDING
    assert not ApprovalDecision.objects.exists()
    assert stop_calls == []


@pytest.mark.parametrize(
    ("username", "page", "decide"),
    [("viewer", 200, 403), ("outsider", 404, 404)],  # a member reads the request; an outsider never learns of it
)
def test_a_viewer_or_an_outsider_cannot_approve(cast, login, pending, stop_calls, username, page, decide):
    client = login(getattr(cast, username))
    assert client.get(f"/approvals/{pending.pk}/").status_code == page
    assert client.post(f"/approvals/{pending.pk}/decide/", {"decision": "approve"}).status_code == decide
    assert ApprovalRequest.objects.get(pk=pending.pk).status == Status.PENDING
    assert stop_calls == []


def test_an_approver_approves_and_the_page_shows_the_result(cast, login, pending, stop_calls):
    client = login(cast.approver)
    page = client.get(f"/approvals/{pending.pk}/")
    assert 'value="approve"' in page.content.decode()
    fragment = client.post(
        f"/approvals/{pending.pk}/decide/", {"decision": "approve", "comment": "fine"}, HTTP_HX_REQUEST="true"
    )
    html = fragment.content.decode()
    assert fragment.status_code == 200
    assert 'data-status="executed"' in html
    assert "ECS accepted the stop" in html
    assert "“<bdi>fine</bdi>”" in html
    assert len(stop_calls) == 1


def test_a_second_click_on_a_decided_request_says_why(cast, login, pending, stop_calls):
    client = login(cast.approver)
    client.post(f"/approvals/{pending.pk}/decide/", {"decision": "approve"})
    again = client.post(f"/approvals/{pending.pk}/decide/", {"decision": "approve"}, HTTP_HX_REQUEST="true")
    assert again.status_code == 409
    assert "already executed" in again.content.decode()
    assert len(stop_calls) == 1


def test_a_reject_ends_the_request(cast, login, pending, stop_calls):
    login(cast.approver).post(f"/approvals/{pending.pk}/decide/", {"decision": "reject", "comment": "use a deploy"})
    assert ApprovalRequest.objects.get(pk=pending.pk).status == Status.REJECTED
    assert stop_calls == []


def test_only_the_requester_can_cancel(cast, login, pending):
    assert login(cast.approver).post(f"/approvals/{pending.pk}/cancel/").status_code == 403
    assert ApprovalRequest.objects.get(pk=pending.pk).status == Status.PENDING
    login(cast.operator).post(f"/approvals/{pending.pk}/cancel/")
    assert ApprovalRequest.objects.get(pk=pending.pk).status == Status.CANCELLED


def test_the_inbox_lists_what_waits_for_an_approver_and_the_nav_counts_it(cast, login, pending):
    client = login(cast.approver)
    inbox = client.get("/approvals/inbox/").content.decode()
    assert f'data-request="{pending.pk}"' in inbox
    nav = client.get("/approvals/nav/", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="inbox-count"' in nav and ">1</span>" in nav
    assert 'data-live-ws="/ws/approvals/inbox/"' in nav


def test_the_inbox_does_not_show_ones_own_request_nor_other_accounts(cast, login, pending):
    assert f'data-request="{pending.pk}"' not in login(cast.operator).get("/approvals/inbox/").content.decode()
    assert f'data-request="{pending.pk}"' not in login(cast.outsider).get("/approvals/inbox/").content.decode()
    nav = login(cast.operator).get("/approvals/nav/").content.decode()
    assert "inbox-count" not in nav and "data-live-ws" not in nav


def test_break_glass_shows_in_every_approvers_inbox_until_seen(cast, login, stop_target):
    request = stop_request(
        actor=cast.admin, target=stop_target(cast.admin), reason="x", break_glass=True, break_glass_reason="outage"
    )
    for approver in (cast.approver, cast.approver2):
        client = login(approver)
        inbox = client.get("/approvals/inbox/").content.decode()
        assert f'data-request="{request.pk}"' in inbox and "outage" in inbox
        assert ">1</span>" in client.get("/approvals/nav/").content.decode()
    client = login(cast.approver)
    client.post(f"/approvals/{request.pk}/acknowledge/", {"next": "inbox"})
    assert "inbox-count" not in client.get("/approvals/nav/").content.decode()
    assert ">1</span>" in login(cast.approver2).get("/approvals/nav/").content.decode()
    page = login(cast.viewer).get(f"/approvals/{request.pk}/").content.decode()
    assert "break-glass" in page and "outage" in page


def test_the_list_filters_by_status_and_hides_other_accounts(cast, login, pending):
    client = login(cast.viewer)
    assert f'data-request="{pending.pk}"' in client.get("/approvals/?status=pending").content.decode()
    assert f'data-request="{pending.pk}"' not in client.get("/approvals/?status=executed").content.decode()
    assert f'data-request="{pending.pk}"' not in login(cast.outsider).get("/approvals/").content.decode()


def test_the_stop_button_is_offered_only_to_operators_somewhere(cast, login, pending):
    assert 'id="request-stop"' not in login(cast.viewer).get("/approvals/").content.decode()
    assert 'id="request-stop"' in login(cast.operator).get("/approvals/").content.decode()
    assert 'id="request-stop"' in login(cast.outsider).get("/approvals/").content.decode()  # admin elsewhere


def test_a_decision_on_a_closed_request_answers_409_with_the_card(cast, login, pending):
    login(cast.operator).post(f"/approvals/{pending.pk}/cancel/")
    answer = login(cast.approver).post(
        f"/approvals/{pending.pk}/decide/", {"decision": "approve"}, HTTP_HX_REQUEST="true"
    )
    assert answer.status_code == 409
    html = answer.content.decode()
    assert html.startswith("{#") is False and 'id="approval-card" data-status="cancelled"' in html
    assert "This request is already cancelled." in html
