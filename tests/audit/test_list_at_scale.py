"""The audit page at scale: a capped count, paging past it, the action menu from an index."""

from __future__ import annotations

import re

import pytest

from ecsportal.audit import views
from ecsportal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def _events(account_pk: int | None, count: int, action: str = "run.ended") -> None:
    AuditEvent.objects.bulk_create(
        AuditEvent(account_pk=account_pk, action=action, target=f"target-{n:03d}") for n in range(count)
    )


def test_past_the_cap_the_audit_page_says_plus_and_pages_on_to_the_last_event(cast, login, monkeypatch):
    monkeypatch.setattr(views, "COUNT_CAP", 30)
    _events(cast.prod.pk, 60)
    client = login(cast.admin)
    first = client.get("/audit/").content.decode()
    assert "30+ events · page 1<" in first and "older →" in first and "of 2" not in first
    second = client.get("/audit/?page=2").content.decode()
    shown = set(re.findall(r"target-\d{3}", first)) | set(re.findall(r"target-\d{3}", second))
    assert len(shown) == 60 and "older →" not in second and "← newer" in second


def test_the_action_menu_offers_only_the_actions_of_the_admins_accounts(cast, login):
    _events(cast.prod.pk, 2, "runbook.created")
    _events(cast.other.pk, 2, "membership.secret-other")
    _events(None, 1, "auth.login")
    html = login(cast.outsider).get("/audit/").content.decode()  # the outsider administers "Other Team" only
    assert "membership.secret-other" in html and "runbook.created" not in html and ">auth.login<" not in html
    html = login(cast.admin).get("/audit/").content.decode()
    assert "runbook.created" in html and "membership.secret-other" in html and ">auth.login<" in html
