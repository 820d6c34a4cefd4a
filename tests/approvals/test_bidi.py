"""Bidi controls: refused in decision comments, isolated wherever reasons are shown."""

from __future__ import annotations

import pytest

from ecsportal.approvals.models import ApprovalDecision, ApprovalRequest
from ecsportal.stops.services import stop_request

pytestmark = pytest.mark.django_db

RLO = "\u202e"
REFUSED = "invisible text-direction characters (U+202E)"


def test_a_decision_comment_with_an_override_is_refused(cast, login, stop_target):
    pending = stop_request(actor=cast.operator, target=stop_target(cast.operator), reason="stuck consumer")
    answer = login(cast.approver).post(
        f"/approvals/{pending.pk}/decide/", {"decision": "approve", "comment": f"ok {RLO}"}, HTTP_HX_REQUEST="true"
    )
    assert answer.status_code == 422
    assert not ApprovalDecision.objects.exists()


def test_stored_reasons_are_isolated_on_the_approval_pages(cast, login, stop_target):
    pending = stop_request(actor=cast.operator, target=stop_target(cast.operator), reason="stuck consumer")
    ApprovalRequest.objects.filter(pk=pending.pk).update(reason=f"old {RLO}reason")
    for url in (f"/approvals/{pending.pk}/", "/approvals/", "/approvals/inbox/"):
        assert f"<bdi>old {RLO}reason</bdi>" in login(cast.approver).get(url).content.decode(), url
