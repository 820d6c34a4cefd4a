"""Django's admin shows accounts and memberships but cannot change them around the audit trail."""

from __future__ import annotations

import pytest

from ecsportal.accounts.models import AwsAccount, Membership

pytestmark = pytest.mark.django_db


def test_admin_shows_accounts_without_their_secret(cast, login):
    client = login(cast.admin)
    assert client.get("/admin/accounts/awsaccount/").status_code == 200
    page = client.get(f"/admin/accounts/awsaccount/{cast.prod.pk}/change/")
    assert page.status_code == 200
    assert "Acme Production" in page.content.decode()
    assert "secret_access_key_encrypted" not in page.content.decode()


def test_admin_cannot_change_or_delete_accounts(cast, login):
    client = login(cast.admin)
    answer = client.post(
        f"/admin/accounts/awsaccount/{cast.prod.pk}/change/",
        {"name": "Renamed in admin", "account_id": "111122223333", "regions": '["eu-west-1"]'},
    )
    assert answer.status_code == 403
    assert client.post(f"/admin/accounts/awsaccount/{cast.prod.pk}/delete/", {"post": "yes"}).status_code == 403
    cast.prod.refresh_from_db()
    assert cast.prod.name == "Acme Production"
    assert AwsAccount.objects.filter(pk=cast.prod.pk).exists()


def test_admin_cannot_change_or_delete_memberships(cast, login):
    membership = Membership.objects.get(account=cast.prod, user=cast.viewer)
    client = login(cast.admin)
    assert client.post(f"/admin/accounts/membership/{membership.pk}/change/", {"role": "40"}).status_code == 403
    assert client.post(f"/admin/accounts/membership/{membership.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Membership.objects.get(pk=membership.pk).role == membership.role
