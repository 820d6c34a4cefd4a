"""The access gate on every account page: anonymous, outsider, each role, admin.

Members below admin get a 403 naming the role they need; people who are not members get a 404
that never names the account; anonymous visitors are sent to the login page.
"""

from __future__ import annotations

import pytest

from ecsportal.accounts.models import Membership, Role
from ecsportal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

VALID = {
    "name": "Acme Production",
    "account_id": "123456789012",
    "regions": "eu-west-1 us-east-1",
    "credential_source": "default",
    "session_name": "ecsportal",
    "session_duration": "3600",
}


def urls(cast) -> dict[str, tuple[str, str, dict]]:
    """Every account URL: name → (method, path, POST data) for the prod account."""
    pk = cast.prod.pk
    member = Membership.objects.get(account=cast.prod, user=cast.viewer).pk
    return {
        "detail": ("get", f"/accounts/{pk}/", {}),
        "edit": ("get", f"/accounts/{pk}/edit/", {}),
        "edit-post": ("post", f"/accounts/{pk}/edit/", VALID),
        "toggle": ("post", f"/accounts/{pk}/enabled/", {"enabled": "0"}),
        "test": ("post", f"/accounts/{pk}/test/", {}),
        "member-add": ("post", f"/accounts/{pk}/members/", {"username": "outsider", "role": "10"}),
        "member-change": ("post", f"/accounts/{pk}/members/{member}/", {"role": "20"}),
        "member-remove": ("post", f"/accounts/{pk}/members/{member}/remove/", {}),
    }


ADMIN_PAGES = ["edit", "edit-post", "toggle", "test", "member-add", "member-change", "member-remove"]
ALL_PAGES = ["detail", *ADMIN_PAGES]


def call(client, method: str, path: str, data: dict):
    return client.get(path) if method == "get" else client.post(path, data)


@pytest.mark.parametrize("page", [*ALL_PAGES, "list", "create"])
def test_anonymous_is_sent_to_login(client, cast, page):
    method, path, data = {**urls(cast), "list": ("get", "/accounts/", {}), "create": ("get", "/accounts/new/", {})}[
        page
    ]
    answer = call(client, method, path, data)
    assert answer.status_code == 302
    assert answer["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("page", ALL_PAGES)
def test_outsider_gets_404_that_never_names_the_account(cast, login, page):
    method, path, data = urls(cast)[page]
    before = AuditEvent.objects.count()
    answer = call(login(cast.outsider), method, path, data)
    assert answer.status_code == 404
    body = answer.content.decode()
    assert "Acme Production" not in body
    assert "123456789012" not in body
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("role", ["viewer", "operator", "approver"])
@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_members_below_admin_get_403_on_admin_pages(cast, login, role, page):
    method, path, data = urls(cast)[page]
    before = (AuditEvent.objects.count(), Membership.objects.count())
    answer = call(login(getattr(cast, role)), method, path, data)
    assert answer.status_code == 403
    assert "needs the admin role" in answer.content.decode()
    cast.prod.refresh_from_db()
    assert cast.prod.is_enabled
    assert (AuditEvent.objects.count(), Membership.objects.count()) == before


@pytest.mark.parametrize("role", ["viewer", "operator", "approver", "admin"])
def test_every_member_can_read_the_account(cast, login, role):
    answer = login(getattr(cast, role)).get(f"/accounts/{cast.prod.pk}/")
    assert answer.status_code == 200
    assert "Acme Production" in answer.content.decode()


@pytest.mark.parametrize("role", ["viewer", "operator", "approver"])
def test_members_below_admin_see_no_admin_controls(cast, login, role):
    body = login(getattr(cast, role)).get(f"/accounts/{cast.prod.pk}/").content.decode()
    assert "Test connection" not in body
    assert "member-form" not in body
    assert f"/accounts/{cast.prod.pk}/edit/" not in body


def test_admin_reaches_every_admin_page(local_aws, cast, login):
    client = login(cast.admin)
    expected = {
        "detail": 200,
        "edit": 200,
        "edit-post": 302,
        "toggle": 302,
        "test": 200,
        "member-add": 302,
        "member-change": 302,
        "member-remove": 302,
    }
    for page, (method, path, data) in urls(cast).items():
        assert call(client, method, path, data).status_code == expected[page], page
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"account.disable", "account.test_connection", "membership.add", "membership.change"} <= actions
    assert "membership.remove" in actions


def test_account_admin_who_is_not_superuser_manages_own_account(cast, login):
    client = login(cast.outsider)
    assert client.get(f"/accounts/{cast.other.pk}/edit/").status_code == 200
    answer = client.post(f"/accounts/{cast.other.pk}/members/", {"username": "viewer", "role": "10"})
    assert answer.status_code == 302
    assert Membership.objects.filter(account=cast.other, user=cast.viewer, role=Role.VIEWER).exists()


def test_account_admin_cannot_remove_a_membership_of_another_account_through_their_own(cast, login):
    victim = Membership.objects.get(account=cast.prod, user=cast.viewer)
    client = login(cast.outsider)
    client.post(f"/accounts/{cast.other.pk}/members/{victim.pk}/remove/")
    client.post(f"/accounts/{cast.other.pk}/members/{victim.pk}/", {"role": "40"})
    victim.refresh_from_db()
    assert victim.role == Role.VIEWER


@pytest.mark.parametrize("role", ["viewer", "operator", "approver", "outsider"])
def test_only_superusers_add_accounts(cast, login, role):
    client = login(getattr(cast, role))
    assert client.get("/accounts/new/").status_code == 403
    answer = client.post("/accounts/new/", {**VALID, "name": "Sneaky"})
    assert answer.status_code == 403
    assert not type(cast.prod).objects.filter(name="Sneaky").exists()


def test_superuser_adds_an_account(local_aws, cast, login):
    answer = login(cast.admin).post("/accounts/new/", {**VALID, "name": "Acme Sandbox"})
    assert answer.status_code == 302
    created = type(cast.prod).objects.get(name="Acme Sandbox")
    assert answer["Location"] == f"/accounts/{created.pk}/"
    assert AuditEvent.objects.filter(action="account.create", account_pk=created.pk).exists()


def test_account_list_shows_only_the_users_accounts(cast, login):
    viewer = login(cast.viewer).get("/accounts/").content.decode()
    assert "Acme Production" in viewer and "Acme Staging" in viewer
    assert "Other Team" not in viewer
    outsider = login(cast.outsider).get("/accounts/").content.decode()
    assert "Other Team" in outsider
    assert "Acme Production" not in outsider and "Acme Staging" not in outsider


def test_a_missing_account_is_404_for_everybody(cast, login):
    assert login(cast.admin).get("/accounts/999999/").status_code == 404


def test_membership_form_names_a_missing_user(cast, login):
    answer = login(cast.admin).post(f"/accounts/{cast.prod.pk}/members/", {"username": "nobody", "role": "10"})
    assert answer.status_code == 422
    assert "No active user is called “nobody”" in answer.content.decode()


def test_htmx_form_submit_redirects_on_the_client(cast, login):
    answer = login(cast.admin).post(
        f"/accounts/{cast.prod.pk}/enabled/", {"enabled": "0"}, headers={"HX-Request": "true"}
    )
    assert answer.status_code == 200
    assert answer["HX-Redirect"] == f"/accounts/{cast.prod.pk}/"


def test_account_admin_cannot_repoint_their_account_at_another_aws_account(cast, login):
    """Changing the account ID, credentials or roles is a portal administrator's act; otherwise an
    account admin could point their account at any account the portal's own identity reaches."""
    other = cast.other
    answer = login(cast.outsider).post(
        f"/accounts/{other.pk}/edit/",
        {
            **VALID,
            "name": "Other Team renamed",
            "account_id": "123456789012",
            "regions": "eu-west-1",
            "role_arn": "",
            "allowed_role_arns": "arn:aws:iam::123456789012:role/admin",
        },
    )
    assert answer.status_code == 302
    other.refresh_from_db()
    assert other.name == "Other Team renamed"
    assert other.account_id == "999999999999"
    assert other.role_arn == "arn:aws:iam::999999999999:role/ecsportal-access"
    assert other.allowed_role_arns == []


def test_account_admin_sees_the_connection_fields_read_only(cast, login):
    body = login(cast.outsider).get(f"/accounts/{cast.other.pk}/edit/").content.decode()
    assert "Only portal administrators change how the portal reaches AWS" in body
    assert 'name="account_id" id="id_account_id" value="999999999999" disabled>' in body
    assert 'name="name" id="id_name" value="Other Team">' in body


def test_superuser_changes_the_connection(local_aws, cast, login):
    # Without its role, the default chain reaches moto's 123456789012: the ID has to follow.
    answer = login(cast.admin).post(
        f"/accounts/{cast.other.pk}/edit/",
        {**VALID, "name": "Other Team", "account_id": "123456789012", "regions": "eu-west-1", "role_arn": ""},
    )
    assert answer.status_code == 302
    cast.other.refresh_from_db()
    assert cast.other.role_arn == ""


def test_account_admin_never_sees_the_external_id_and_saving_keeps_it(cast, login):
    from ecsportal.accounts.models import AwsAccount

    AwsAccount.objects.filter(pk=cast.other.pk).update(
        role_arn="arn:aws:iam::999999999999:role/ecsportal-access", external_id="team-secret-ext-id"
    )
    client = login(cast.outsider)  # admin of "Other Team", not a superuser
    body = client.get(f"/accounts/{cast.other.pk}/edit/").content.decode()
    assert "team-secret-ext-id" not in body
    assert "set (only portal admins see it)" in body
    answer = client.post(
        f"/accounts/{cast.other.pk}/edit/",
        {**VALID, "name": "Other Team renamed", "account_id": "999999999999", "regions": "eu-west-1"},
    )
    assert answer.status_code == 302
    kept = AwsAccount.objects.get(pk=cast.other.pk)
    assert kept.name == "Other Team renamed" and kept.external_id == "team-secret-ext-id"
