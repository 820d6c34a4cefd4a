"""Account services write the change and its audit event together, or neither."""

from __future__ import annotations

import pytest

from ecsportal.accounts import services
from ecsportal.accounts.models import AwsAccount, Membership, Role
from ecsportal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

DATA = {
    "name": "Acme Sandbox",
    "account_id": "111122223333",
    "regions": ["eu-west-1"],
    "credential_source": "default",
    "session_name": "ecsportal",
    "session_duration": 3600,
    "allowed_role_arns": [],
}


class AuditDown(Exception):
    pass


@pytest.fixture
def failing_audit(monkeypatch):
    """The audit write fails (a full disk, a constraint): the change it describes must not stay."""

    def refuse(**_: object) -> None:
        raise AuditDown

    monkeypatch.setattr(services, "audit_record", refuse)


def state() -> tuple:
    return (
        list(AwsAccount.objects.order_by("pk").values()),
        list(Membership.objects.order_by("pk").values()),
        AuditEvent.objects.count(),
    )


def writes(cast):
    viewer_membership = Membership.objects.get(account=cast.prod, user=cast.viewer)
    return {
        "account_create": lambda: services.account_create(actor=cast.admin, data=DATA),
        "account_update": lambda: services.account_update(
            actor=cast.admin, account=cast.prod, data={"name": "Renamed", "is_production": False}
        ),
        "account_set_enabled": lambda: services.account_set_enabled(actor=cast.admin, account=cast.prod, enabled=False),
        "membership_set (add)": lambda: services.membership_set(
            actor=cast.admin, account=cast.prod, user=cast.outsider, role=Role.ADMIN
        ),
        "membership_set (change)": lambda: services.membership_set(
            actor=cast.admin, account=cast.prod, user=cast.viewer, role=Role.ADMIN
        ),
        "membership_remove": lambda: services.membership_remove(
            actor=cast.admin, account=cast.prod, membership_pk=viewer_membership.pk
        ),
    }


WRITES = [
    "account_create",
    "account_update",
    "account_set_enabled",
    "membership_set (add)",
    "membership_set (change)",
    "membership_remove",
]


@pytest.mark.parametrize("write", WRITES)
def test_nothing_is_saved_when_the_audit_event_cannot_be_written(cast, failing_audit, write):
    before = state()
    with pytest.raises(AuditDown):
        writes(cast)[write]()
    assert state() == before


@pytest.mark.parametrize(
    ("write", "action"),
    [
        ("account_create", "account.create"),
        ("account_update", "account.update"),
        ("account_set_enabled", "account.disable"),
        ("membership_set (add)", "membership.add"),
        ("membership_set (change)", "membership.change"),
        ("membership_remove", "membership.remove"),
    ],
)
def test_every_write_records_who_did_what(cast, write, action):
    writes(cast)[write]()
    event = AuditEvent.objects.get(action=action)
    assert event.actor == cast.admin
    assert event.actor_username == "admin"
    assert event.account_name


def test_update_records_the_names_of_changed_fields_only(cast):
    services.account_update(actor=cast.admin, account=cast.prod, data={"name": "Renamed", "is_production": True})
    event = AuditEvent.objects.get(action="account.update")
    assert event.details == {"fields": ["name"]}


def test_update_without_changes_records_nothing(cast):
    services.account_update(actor=cast.admin, account=cast.prod, data={"name": cast.prod.name})
    assert not AuditEvent.objects.filter(action="account.update").exists()


def test_removing_a_membership_that_is_gone_records_nothing(cast):
    services.membership_remove(actor=cast.admin, account=cast.prod, membership_pk=987654)
    assert not AuditEvent.objects.filter(action="membership.remove").exists()


def test_switching_to_the_default_chain_forgets_the_stored_key(cast):
    account = services.account_create(
        actor=cast.admin,
        data={
            **DATA,
            "credential_source": "keys",
            "access_key_id": "AKIAABCDEFGHIJKLMNOP",
            "secret_access_key": "s" * 40,
        },
    )
    assert account.has_stored_secret
    services.account_update(actor=cast.admin, account=account, data={"credential_source": "default"})
    account.refresh_from_db()
    assert not account.has_stored_secret
    assert account.access_key_id == ""
