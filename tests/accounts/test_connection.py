"""The "Test connection" button: STS GetCallerIdentity through the account's chain and role."""

from __future__ import annotations

import pytest

from ecsportal.accounts import services
from ecsportal.accounts.models import AwsAccount, CredentialSource
from ecsportal.audit.models import AuditEvent
from ecsportal.aws import sessions
from ecsportal.demo import localaws

pytestmark = pytest.mark.django_db


def press_test(client, account: AwsAccount) -> str:
    answer = client.post(f"/accounts/{account.pk}/test/", headers={"HX-Request": "true"})
    assert answer.status_code == 200
    return answer.content.decode()


def test_default_chain_reaches_the_production_account(local_aws, cast, login):
    body = press_test(login(cast.admin), cast.prod)
    assert "Connected as" in body
    assert f'in account <span class="mono">{localaws.ACCOUNT_A}</span>' in body
    assert "Warning" not in body
    event = AuditEvent.objects.get(action="account.test_connection")
    assert event.details == {"ok": True, "reached": localaws.ACCOUNT_A, "error_code": ""}


def test_assumed_role_reaches_the_staging_account(local_aws, cast, login):
    body = press_test(login(cast.admin), cast.staging)
    assert "assumed-role/ecsportal-access/ecsportal-demo" in body
    assert f'in account <span class="mono">{localaws.ACCOUNT_B}</span>' in body
    assert "Warning" not in body


def test_stored_access_key_is_used(local_aws, cast):
    account = services.account_create(
        actor=cast.admin,
        data={
            "name": "Keys",
            "account_id": localaws.ACCOUNT_A,
            "regions": ["eu-west-1"],
            "credential_source": CredentialSource.ACCESS_KEY,
            "access_key_id": "AKIAFTESTSKEYS000001",
            "secret_access_key": "stored-secret-for-the-connection-test",
            "session_name": "ecsportal",
            "session_duration": 3600,
            "allowed_role_arns": [],
        },
    )
    identity, error = services.account_test_connection(actor=cast.admin, account=account)
    assert error is None
    assert identity.account_id == localaws.ACCOUNT_A
    # the very client that answered signs with the stored key, not the portal's environment
    used = sessions.client(account.aws_config(), "sts", "eu-west-1")._request_signer._credentials
    assert used.access_key == "AKIAFTESTSKEYS000001"
    assert used.secret_key == "stored-secret-for-the-connection-test"


def test_reaching_a_different_account_than_configured_warns(local_aws, cast, login):
    AwsAccount.objects.filter(pk=cast.prod.pk).update(account_id="111122223333")
    cast.prod.refresh_from_db()
    body = press_test(login(cast.admin), cast.prod)
    assert "Warning:</strong> that is not account 111122223333" in body


def test_unreachable_endpoint_gives_a_clear_message(unreachable_aws, cast, login):
    body = press_test(login(cast.admin), cast.prod)
    assert "Connection failed." in body
    assert "Could not reach the AWS endpoint" in body
    event = AuditEvent.objects.get(action="account.test_connection")
    assert event.details["ok"] is False
    assert event.details["error_code"] == "EndpointConnectionError"


def test_undecryptable_secret_is_reported_not_raised(local_aws, cast, settings):
    from cryptography.fernet import Fernet

    account = services.account_create(
        actor=cast.admin,
        data={
            "name": "Rotated away",
            "account_id": localaws.ACCOUNT_A,
            "regions": ["eu-west-1"],
            "credential_source": CredentialSource.ACCESS_KEY,
            "access_key_id": "AKIAFTESTSKEYS000002",
            "secret_access_key": "secret-under-a-key-that-is-gone",
        },
    )
    settings.ECSPORTAL_SECRET_KEYS = [Fernet.generate_key().decode()]
    identity, error = services.account_test_connection(actor=cast.admin, account=account)
    assert identity is None
    assert "cannot be decrypted with ECSPORTAL_SECRET_KEYS" in str(error)


def test_without_javascript_the_result_comes_back_on_the_whole_page(local_aws, cast, login):
    answer = login(cast.admin).post(f"/accounts/{cast.staging.pk}/test/")
    body = answer.content.decode()
    assert answer.status_code == 200
    assert "<nav" in body and "Members" in body
    assert f'in account <span class="mono">{localaws.ACCOUNT_B}</span>' in body
