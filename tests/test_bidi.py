"""Bidi controls: refused in account and member names, isolated where names and AWS text are shown."""

from __future__ import annotations

import html

import pytest

from ecsportal.accounts.models import AwsAccount
from ecsportal.demo import localaws
from tests.stopped.test_views import row

pytestmark = pytest.mark.django_db

RLO = "\u202e"
REFUSED = "invisible text-direction characters (U+202E)"


def test_an_account_name_with_an_override_is_refused(cast, login):
    data = {
        "name": f"Prod {RLO}210987654321",
        "account_id": localaws.ACCOUNT_A,
        "regions": "eu-west-1",
        "credential_source": "default",
        "session_name": "ecsportal",
        "session_duration": "3600",
    }
    answer = login(cast.admin).post("/accounts/new/", data, HTTP_HX_REQUEST="true")
    assert REFUSED in html.unescape(answer.content.decode())
    assert not AwsAccount.objects.filter(name__startswith="Prod ").exists()


def test_a_member_name_with_an_isolate_is_refused_without_echoing_it(cast, login):
    answer = login(cast.admin).post(f"/accounts/{cast.prod.pk}/members/", {"username": "viewer\u2067", "role": "10"})
    assert answer.status_code == 422
    body = answer.content.decode()
    assert "invisible text-direction characters (U+2067)" in html.unescape(body)
    assert "No active user" not in body


def test_names_and_reasons_already_stored_are_isolated_on_the_stopped_pages(cast, login):
    """Older rows and AWS-provided text (stoppedReason) cannot be refused: they are isolated."""
    AwsAccount.objects.filter(pk=cast.prod.pk).update(name=f"Prod {RLO}999")
    cast.prod.refresh_from_db()
    item = row(cast.prod, reason=f"Essential container exited {RLO}txet", containers=(("app", 1, f"boom {RLO}x"),))
    page = login(cast.viewer).get("/stopped/?range=7d").content.decode()
    assert f"<bdi>Prod {RLO}999</bdi>" in page
    assert f"<bdi>Essential container exited {RLO}txet</bdi>" in page
    assert f"<bdi>boom {RLO}x</bdi>" in page
    detail = login(cast.viewer).get(f"/stopped/{item.pk}/").content.decode()
    assert f'<bdi>Prod {RLO}999</bdi> <span class="mono">({localaws.ACCOUNT_A})</span>' in detail
    assert f"<bdi>Essential container exited {RLO}txet</bdi>" in detail


def test_audit_targets_and_account_names_are_isolated(cast, login):
    AwsAccount.objects.filter(pk=cast.prod.pk).update(name=f"Prod {RLO}999")
    login(cast.admin).post(f"/accounts/{cast.prod.pk}/enabled/", {"enabled": "1"})
    page = login(cast.admin).get("/audit/").content.decode()
    assert f"<bdi>Prod {RLO}999</bdi>" in page


def test_account_pages_isolate_the_name(cast, login):
    AwsAccount.objects.filter(pk=cast.prod.pk).update(name=f"Prod {RLO}999")
    listed = login(cast.viewer).get("/accounts/").content.decode()
    assert f'<a class="user-text" href="/accounts/{cast.prod.pk}/">Prod {RLO}999</a>' in listed
    assert f"<bdi>Prod {RLO}999</bdi>" in login(cast.viewer).get(f"/accounts/{cast.prod.pk}/").content.decode()
