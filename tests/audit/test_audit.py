"""The audit trail: append-only, never a secret, and readable by account admins for their accounts."""

from __future__ import annotations

import pytest
from django.db import transaction

from ecsportal.audit.models import AuditEvent
from ecsportal.audit.services import audit_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(cast):
    audit_record(actor=cast.admin, action="account.update", target="Acme Production", account=cast.prod)
    audit_record(actor=cast.admin, action="membership.add", target="viewer", account=cast.staging)
    audit_record(actor=cast.outsider, action="account.update", target="Other Team", account=cast.other)
    return AuditEvent.objects.all()


def test_events_cannot_be_changed_or_deleted(events):
    event = events.first()
    event.target = "rewritten"
    with pytest.raises(TypeError, match="append-only"):
        event.save()
    with pytest.raises(TypeError, match="append-only"):
        event.delete()
    with pytest.raises(TypeError, match="append-only"):
        AuditEvent.objects.filter(pk=event.pk).update(target="rewritten")
    with pytest.raises(TypeError, match="append-only"):
        AuditEvent.objects.all().delete()
    with pytest.raises(TypeError, match="append-only"), transaction.atomic():
        AuditEvent.objects.bulk_update([event], ["target"])  # goes through the queryset's update
    assert AuditEvent.objects.filter(target="rewritten").count() == 0


def test_secrets_are_scrubbed_from_details_at_any_depth(cast):
    event = audit_record(
        actor=cast.admin,
        action="test",
        details={
            "secret_access_key": "s1",
            "Token": "t1",
            "nested": {"password": "p1", "fields": ["a"]},
            "changes": [{"changed": {"fields": ["name"]}, "secret": "s2"}],
        },
    )
    event.refresh_from_db()
    assert event.details == {"nested": {"fields": ["a"]}, "changes": [{"changed": {"fields": ["name"]}}]}


def test_records_the_actor_account_and_address(cast, client):
    client.force_login(cast.admin)
    client.post(f"/accounts/{cast.prod.pk}/enabled/", {"enabled": "0"}, REMOTE_ADDR="203.0.113.9")
    event = AuditEvent.objects.get(action="account.disable")
    assert (event.actor_username, event.account_name, event.account_pk, event.source_ip) == (
        "admin",
        "Acme Production",
        cast.prod.pk,
        "203.0.113.9",
    )


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "198.51.100.7", "203.0.113.9"),  # no proxy trusted: the peer, whatever the header says
        (1, "198.51.100.7", "198.51.100.7"),  # nginx replaced the header with the address it saw
        (1, "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # an appending proxy: the client wrote the first
        (2, "6.6.6.6, 198.51.100.7, 10.0.0.5", "198.51.100.7"),  # an ALB in front of nginx
        (2, "198.51.100.7", "203.0.113.9"),  # fewer entries than proxies: not through them, the peer
        (1, "not-an-address", None),
    ],
)
def test_the_client_address_is_never_one_the_client_chose(cast, client, settings, hops, forwarded, expected):
    settings.ECSPORTAL_TRUSTED_PROXY_HOPS = hops
    client.force_login(cast.admin)
    client.post(
        f"/accounts/{cast.prod.pk}/enabled/",
        {"enabled": "0"},
        REMOTE_ADDR="203.0.113.9",
        HTTP_X_FORWARDED_FOR=forwarded,
    )
    assert AuditEvent.objects.get(action="account.disable").source_ip == expected


def test_system_actions_have_no_actor(cast):
    assert audit_record(actor=None, action="collector.run").actor_username == "system"


def test_superuser_sees_every_event(events, cast, login):
    html = login(cast.admin).get("/audit/").content.decode()
    assert "Acme Production" in html and "Acme Staging" in html and "Other Team" in html


def test_account_admin_sees_only_their_accounts_events(events, cast, login):
    html = login(cast.outsider).get("/audit/").content.decode()
    assert "Other Team" in html
    assert "Acme Production" not in html and "Acme Staging" not in html


def test_account_admin_cannot_filter_their_way_into_another_account(events, cast, login):
    html = login(cast.outsider).get(f"/audit/?account={cast.prod.pk}").content.decode()
    assert "Acme Production" not in html
    assert "No audit events match" in html


@pytest.mark.parametrize("role", ["viewer", "operator", "approver"])
def test_members_below_admin_may_not_read_the_trail(events, cast, login, role):
    assert login(getattr(cast, role)).get("/audit/").status_code == 403


def test_anonymous_is_sent_to_login(client):
    assert client.get("/audit/")["Location"].startswith("/login/")


def test_filters_narrow_the_list(events, cast, login):
    client = login(cast.admin)

    def rows(**filters: str) -> str:
        html = client.get("/audit/", filters, headers={"HX-Request": "true"}).content.decode()
        assert "<html" not in html, "HTMX gets the events fragment only"
        return html

    html = rows(action="membership.")
    assert "membership.add" in html and "account.update" not in html
    html = rows(actor="outsider")
    assert "Other Team" in html and "Acme Production" not in html
    html = rows(q="viewer")
    assert "membership.add" in html and "Other Team" not in html
    html = rows(account=str(cast.prod.pk))
    assert "Acme Production" in html and "Acme Staging" not in html


def test_the_nav_shows_audit_to_admins_only(cast, login):
    assert 'href="/audit/"' in login(cast.outsider).get("/").content.decode()
    assert 'href="/audit/"' not in login(cast.viewer).get("/").content.decode()


def test_the_admin_shows_events_but_cannot_add_change_or_delete_them(events, cast, login):
    client = login(cast.admin)
    event = events.first()
    assert client.get("/admin/audit/auditevent/").status_code == 200
    assert client.get(f"/admin/audit/auditevent/{event.pk}/change/").status_code == 200  # a read-only view
    assert client.post(f"/admin/audit/auditevent/{event.pk}/change/", {"target": "rewritten"}).status_code == 403
    assert client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post("/admin/audit/auditevent/add/", {"action": "forged"}).status_code == 403
    answer = client.post(
        "/admin/audit/auditevent/", {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    )
    assert answer.status_code in (200, 302)  # the bulk delete action is not offered; nothing goes
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    assert not AuditEvent.objects.filter(target="rewritten").exists()
