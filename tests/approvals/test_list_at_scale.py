"""The request list at scale: a capped count, paging past it."""

from __future__ import annotations

import re

import pytest

from ecsportal.approvals import views
from ecsportal.approvals.models import ApprovalRequest
from ecsportal.stops.services import stop_request

pytestmark = pytest.mark.django_db


def test_past_the_cap_the_request_list_pages_on_without_a_last_page(cast, login, stop_target, monkeypatch):
    monkeypatch.setattr(views, "COUNT_CAP", 30)
    first = stop_request(actor=cast.operator, target=stop_target(cast.operator), reason="stuck consumer")
    copies = []
    for _ in range(59):
        first.pk = None
        copies.append(
            ApprovalRequest(**{f.attname: getattr(first, f.attname) for f in ApprovalRequest._meta.concrete_fields})
        )
    ApprovalRequest.objects.bulk_create(copies)
    client = login(cast.viewer)
    page_one = client.get("/approvals/").content.decode()
    assert " page 1 " in page_one and "page 1 of" not in page_one and ">older<" in page_one
    page_two = client.get("/approvals/?page=2").content.decode()
    rows = set(re.findall(r'data-request="(\d+)"', page_one)) | set(re.findall(r'data-request="(\d+)"', page_two))
    assert len(rows) == 60 and ">older<" not in page_two
