"""Saving an account's connection asks STS which account it reaches (moto's default chain: 123456789012)."""

from __future__ import annotations

import html

import pytest
from django.contrib.messages import get_messages

from ecsportal.accounts.models import AwsAccount
from ecsportal.audit.models import AuditEvent
from ecsportal.demo import localaws

pytestmark = pytest.mark.django_db

NEW = {
    "name": "Acme Sandbox",
    "account_id": localaws.ACCOUNT_A,
    "regions": "eu-west-1",
    "credential_source": "default",
    "session_name": "ecsportal",
    "session_duration": "3600",
}


def _messages(answer) -> list[str]:
    return [str(m) for m in get_messages(answer.wsgi_request)]


def test_a_made_up_id_on_the_default_chain_is_refused_and_nothing_is_saved(local_aws, cast, login):
    answer = login(cast.admin).post("/accounts/new/", {**NEW, "account_id": "111122223333"}, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    body = html.unescape(answer.content.decode())
    assert f"These credentials reach AWS account {localaws.ACCOUNT_A}, not 111122223333 as declared." in body
    assert "nothing was saved" in body
    assert not AwsAccount.objects.filter(name="Acme Sandbox").exists()
    assert not AuditEvent.objects.filter(action="account.create").exists()


def test_the_right_id_is_saved_and_said_to_be_checked(local_aws, cast, login):
    answer = login(cast.admin).post("/accounts/new/", NEW)
    assert answer.status_code == 302
    assert AwsAccount.objects.filter(name="Acme Sandbox", account_id=localaws.ACCOUNT_A).exists()
    assert any(f"Checked: its credentials reach account {localaws.ACCOUNT_A}." in m for m in _messages(answer))


def test_an_assumed_role_is_checked_against_the_role_s_account(local_aws, cast, login):
    data = {
        **NEW,
        "account_id": localaws.ACCOUNT_A,  # wrong: the role lives in account B
        "role_arn": localaws.ROLE_B,
        "external_id": localaws.EXTERNAL_ID_B,
    }
    answer = login(cast.admin).post("/accounts/new/", data)
    assert answer.status_code == 200  # the form again, with the error
    assert not AwsAccount.objects.filter(name="Acme Sandbox").exists()


def test_changing_the_id_of_an_account_to_another_is_refused(local_aws, cast, login):
    data = {**NEW, "name": cast.prod.name, "account_id": "111122223333", "regions": "eu-west-1 us-east-1"}
    answer = login(cast.admin).post(f"/accounts/{cast.prod.pk}/edit/", data)
    assert answer.status_code == 200
    assert "not 111122223333 as declared" in html.unescape(answer.content.decode())
    cast.prod.refresh_from_db()
    assert cast.prod.account_id == localaws.ACCOUNT_A


def test_when_aws_is_unreachable_the_account_is_saved_with_a_warning(unreachable_aws, cast, login):
    answer = login(cast.admin).post("/accounts/new/", {**NEW, "account_id": "111122223333"})
    assert answer.status_code == 302
    assert AwsAccount.objects.filter(name="Acme Sandbox").exists()
    (warning,) = _messages(answer)
    assert "Its account ID could not be checked: Could not reach the AWS endpoint" in warning
    assert "stopped tasks are collected only once the credentials are seen to reach this account" in warning


def test_an_edit_that_leaves_the_connection_alone_asks_nothing(unreachable_aws, cast, login):
    """An account admin (connection fields read-only) renames the account while AWS is down."""
    answer = login(cast.outsider).post(
        f"/accounts/{cast.other.pk}/edit/", {**NEW, "name": "Other Team, renamed", "regions": "eu-west-1"}
    )
    assert answer.status_code == 302
    assert _messages(answer) == ["Account Other Team, renamed saved."]
