"""Stored AWS secret keys: encrypted at rest, write-only in forms, never in pages, admin or logs."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from ecsportal.accounts import crypto
from ecsportal.accounts.models import AwsAccount
from ecsportal.audit.models import AuditEvent
from ecsportal.demo import localaws

pytestmark = pytest.mark.django_db

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYftestsSECRET1"
NEW_SECRET = "je7MtGbClwBF/2Zp9Utk+h3yCo8nvbftestsSECRET2"
KEY_ID = "AKIAFTESTSSECRET0001"
FORM = {
    "name": "Acme Keys",
    "account_id": localaws.ACCOUNT_A,
    "regions": "eu-west-1",
    "credential_source": "keys",
    "access_key_id": KEY_ID,
    "session_name": "ecsportal",
    "session_duration": "3600",
}


def stored_row(pk: int) -> str:
    """The raw database row, as a person with a backup of the database would see it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_awsaccount WHERE id = %s", [pk])
        return repr(cursor.fetchone())


def test_secret_never_leaks_while_creating_editing_testing_and_browsing(local_aws, cast, login, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("botocore", "boto3", "urllib3", "django", "django.request", "django.db.backends", "werkzeug"):
        caplog.set_level(logging.DEBUG, logger=name)
    client = login(cast.admin)
    bodies: list[str] = []

    def visit(method: str, path: str, data: dict | None = None, **kwargs: object) -> None:
        answer = client.get(path) if method == "get" else client.post(path, data or {}, **kwargs)
        assert answer.status_code in {200, 302}, (path, answer.status_code)
        bodies.append(answer.content.decode() + str(answer.headers))

    # an invalid submission first: the secret must not be echoed back into the form
    visit("post", "/accounts/new/", {**FORM, "account_id": "1", "secret_access_key": SECRET})
    visit("post", "/accounts/new/", {**FORM, "secret_access_key": SECRET})
    account = AwsAccount.objects.get(name="Acme Keys")
    pages = [
        "/",
        "/accounts/",
        f"/accounts/{account.pk}/",
        f"/accounts/{account.pk}/edit/",
        "/audit/",
        "/admin/accounts/awsaccount/",
        f"/admin/accounts/awsaccount/{account.pk}/change/",
        f"/admin/accounts/awsaccount/{account.pk}/history/",
        "/admin/accounts/membership/",
        "/inventory/",
    ]
    for path in pages:
        visit("get", path)
    visit("post", f"/accounts/{account.pk}/test/", headers={"HX-Request": "true"})
    assert "Connected as" in bodies[-1]
    # edit without a secret: the stored one stays
    visit("post", f"/accounts/{account.pk}/edit/", {**FORM, "name": "Acme Keys 2", "secret_access_key": ""})
    account.refresh_from_db()
    assert crypto.decrypt(account.secret_access_key_encrypted) == SECRET
    visit("post", f"/accounts/{account.pk}/test/", headers={"HX-Request": "true"})
    # edit with a new secret: it replaces the old one
    visit("post", f"/accounts/{account.pk}/edit/", {**FORM, "secret_access_key": NEW_SECRET})
    visit("post", f"/accounts/{account.pk}/test/", headers={"HX-Request": "true"})
    for path in pages:
        visit("get", path)
    account.refresh_from_db()
    assert crypto.decrypt(account.secret_access_key_encrypted) == NEW_SECRET

    records = [f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records]
    assert any(r.name.startswith("botocore") for r in caplog.records), "botocore's DEBUG logs were not captured"
    events = [f"{e.target} {e.details}" for e in AuditEvent.objects.all()]
    assert len(events) >= 5
    for secret in (SECRET, NEW_SECRET):
        assert not [b for b in bodies if secret in b], "a page showed the secret"
        assert not [r for r in records if secret in r], "a log record carried the secret"
        assert not [e for e in events if secret in e], "an audit event carried the secret"
        assert secret not in stored_row(account.pk), "the secret is stored in plain text"


def test_edit_form_says_a_secret_is_stored_but_never_shows_it(cast, login):
    client = login(cast.admin)
    client.post("/accounts/new/", {**FORM, "secret_access_key": SECRET})
    account = AwsAccount.objects.get(name="Acme Keys")
    body = client.get(f"/accounts/{account.pk}/edit/").content.decode()
    assert "A secret is stored. Leave blank to keep it." in body
    assert 'name="secret_access_key" id="id_secret_access_key" autocomplete="new-password" value=""' in body
    assert SECRET not in body
    assert account.secret_access_key_encrypted not in body


def test_blank_secret_never_clears_the_stored_one(cast, login):
    client = login(cast.admin)
    client.post("/accounts/new/", {**FORM, "secret_access_key": SECRET})
    account = AwsAccount.objects.get(name="Acme Keys")
    for blank in ("", "   "):
        answer = client.post(f"/accounts/{account.pk}/edit/", {**FORM, "secret_access_key": blank})
        assert answer.status_code == 302
        account.refresh_from_db()
        assert crypto.decrypt(account.secret_access_key_encrypted) == SECRET


def test_secret_is_stored_encrypted_with_the_first_key(cast, login, settings):
    client = login(cast.admin)
    client.post("/accounts/new/", {**FORM, "secret_access_key": SECRET})
    account = AwsAccount.objects.get(name="Acme Keys")
    assert SECRET not in stored_row(account.pk)
    first = Fernet(settings.ECSPORTAL_SECRET_KEYS[0].encode())
    assert first.decrypt(account.secret_access_key_encrypted.encode()).decode() == SECRET


def test_key_rotation_keeps_old_secrets_readable(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ECSPORTAL_SECRET_KEYS = [old]
    under_old = crypto.encrypt(SECRET)
    settings.ECSPORTAL_SECRET_KEYS = [new, old]
    assert crypto.decrypt(under_old) == SECRET
    under_new = crypto.encrypt(SECRET)
    assert Fernet(new.encode()).decrypt(under_new.encode()).decode() == SECRET
    rotated = crypto.rotate(under_old)
    settings.ECSPORTAL_SECRET_KEYS = [new]
    assert crypto.decrypt(rotated) == SECRET
    with pytest.raises(crypto.SecretUnreadable, match="add the old key back"):
        crypto.decrypt(under_old)


def test_account_repr_and_aws_config_repr_hide_the_secret(cast):
    account = AwsAccount(name="x", account_id="111122223333", credential_source="keys", access_key_id=KEY_ID)
    account.secret_access_key_encrypted = crypto.encrypt(SECRET)
    config = account.aws_config()
    assert config.secret_access_key == SECRET
    assert SECRET not in repr(config)
    assert SECRET not in repr(account) and SECRET not in str(account)


def test_error_reports_never_show_the_secret(cast, client, monkeypatch):
    """What Django's error report (AdminEmailHandler, `django.request` log) holds when a save fails:
    POST data and every frame's local variables. The secret key must be starred out of both."""
    import sys

    from django.core.signals import got_request_exception
    from django.views.debug import ExceptionReporter

    from ecsportal.accounts import services

    def broken(**_: object) -> None:
        raise RuntimeError("audit store down")

    reports: list[str] = []

    def report(sender: object, request: object, **_: object) -> None:
        reports.append(ExceptionReporter(request, *sys.exc_info()).get_traceback_text())

    monkeypatch.setattr(services, "audit_record", broken)
    got_request_exception.connect(report)
    client.raise_request_exception = False
    client.force_login(cast.admin)
    try:
        client.post("/accounts/new/", {**FORM, "secret_access_key": SECRET})
        account = AwsAccount.objects.create(name="Existing", account_id="111122223333", regions=["eu-west-1"])
        client.post(f"/accounts/{account.pk}/edit/", {**FORM, "name": "Existing", "secret_access_key": NEW_SECRET})
    finally:
        got_request_exception.disconnect(report)
    assert len(reports) == 2
    for text in reports:
        assert "audit store down" in text, "this is Django's error report"
        assert "secret_access_key" in text, "the report lists the POST data"
        assert SECRET not in text and NEW_SECRET not in text
