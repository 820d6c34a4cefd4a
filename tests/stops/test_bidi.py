"""Bidi controls in stop reasons are refused (the shared validator)."""

from __future__ import annotations

import html

import pytest

from ecsportal.accounts.models import Membership, Role
from ecsportal.approvals.models import ApprovalRequest
from tests.approvals.lab import LAB_CLUSTER, LAB_REGION

pytestmark = pytest.mark.django_db

RLO = "\u202e"
REFUSED = "invisible text-direction characters (U+202E)"


def test_a_stop_reason_with_an_override_is_refused(cast, login, lab, run_task):
    arn = run_task()
    task = arn.rsplit("/", 1)[-1]
    data = {"account": str(lab.pk), "region": LAB_REGION, "cluster": LAB_CLUSTER, "task": task}
    client = login(cast.operator)
    for step in ({}, {"confirmed": "1"}):  # the form, and a crafted confirmation
        answer = client.post("/stops/new/", {**data, "reason": f"stuck {RLO}gnidnah", **step})
        assert answer.status_code == 422
        assert REFUSED in html.unescape(answer.content.decode())
    assert not ApprovalRequest.objects.exists()


def test_a_break_glass_reason_with_a_mark_is_refused(cast, login, lab, run_task):
    Membership.objects.filter(user=cast.operator, account=lab).update(role=Role.ADMIN)
    arn = run_task()
    data = {
        "task_arn": arn,
        "reason": "stuck",
        "break_glass": "on",
        "break_glass_reason": "now\u200f",
        "confirmed": "1",
    }
    answer = login(cast.operator).post("/stops/new/", data)
    assert "invisible text-direction characters (U+200F)" in html.unescape(answer.content.decode())
    assert not ApprovalRequest.objects.exists()
