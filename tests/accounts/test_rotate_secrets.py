"""`manage.py rotate_secrets`: the newest key takes over every stored secret; nothing is lost."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from ecsportal.accounts import crypto
from ecsportal.accounts.models import AwsAccount
from ecsportal.audit.models import AuditEvent
from ecsportal.runs.models import Run, RunStatus
from ecsportal.runs.selectors import run_real_command

pytestmark = pytest.mark.django_db

SECRETS = {"Keys One": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYrotateSECRET1", "Keys Two": "je7MtGbClwBF/rotateSECRET2"}
RUN_COMMAND = "printf %s 'rotate-runbook-SECRET3' | sha256sum"


def _key() -> str:
    return Fernet.generate_key().decode()


def _accounts() -> dict[str, AwsAccount]:
    made = {}
    for name, secret in SECRETS.items():
        made[name] = AwsAccount.objects.create(
            name=name,
            account_id="123456789012",
            regions=["eu-west-1"],
            credential_source="keys",
            access_key_id="AKIAROTATE0000000001",
            secret_access_key_encrypted=crypto.encrypt(secret),
        )
    return made


def _sealed_run(cast, account: AwsAccount) -> Run:
    return Run.objects.create(
        account=account,
        region="eu-west-1",
        cluster="c",
        task_arn="arn:aws:ecs:eu-west-1:123456789012:task/c/abc",
        container="app",
        command="printf %s '••••••' | sha256sum",
        command_sealed=crypto.encrypt(RUN_COMMAND),
        command_sha256="0" * 64,
        requested_by=cast.operator,
        status=RunStatus.AWAITING_APPROVAL,
    )


def _rotate(*args: str) -> str:
    out = StringIO()
    call_command("rotate_secrets", *args, stdout=out)
    return out.getvalue()


def _everything_said(output: str) -> str:
    events = " ".join(f"{e.target} {e.details}" for e in AuditEvent.objects.filter(action="secrets.rotate"))
    return output + events


def test_rotate_then_drop_the_old_key_and_every_secret_still_opens(cast, settings):
    old, new = _key(), _key()
    settings.ECSPORTAL_SECRET_KEYS = [old]
    accounts = _accounts()
    run = _sealed_run(cast, accounts["Keys One"])
    before = {a.pk: a.secret_access_key_encrypted for a in AwsAccount.objects.filter(name__in=SECRETS)}

    settings.ECSPORTAL_SECRET_KEYS = [new, old]  # step 1: the new key first, the old one kept
    first = _rotate()  # step 2
    assert "3 secret(s) re-encrypted under the first of 2 key(s); 0 already current; 0 unreadable." in first
    for account in AwsAccount.objects.filter(name__in=SECRETS):
        assert account.secret_access_key_encrypted != before[account.pk]
        assert (
            Fernet(new.encode()).decrypt(account.secret_access_key_encrypted.encode()).decode() == SECRETS[account.name]
        )

    again = _rotate()  # idempotent: nothing left to do
    assert "0 secret(s) re-encrypted under the first of 2 key(s); 3 already current; 0 unreadable." in again

    settings.ECSPORTAL_SECRET_KEYS = [new]  # step 3: the old key dropped
    for account in AwsAccount.objects.filter(name__in=SECRETS):
        assert account.aws_config().secret_access_key == SECRETS[account.name]
    run.refresh_from_db()
    assert run_real_command(run=run) == RUN_COMMAND

    events = list(AuditEvent.objects.filter(action="secrets.rotate").order_by("id"))
    assert [(e.details["rotated"], e.details["already_current"], e.details["unreadable"]) for e in events] == [
        (3, 0, 0),
        (0, 3, 0),
    ]
    assert events[0].actor is None and events[0].actor_username == "system"
    said = _everything_said(first + again)
    for secret in [*SECRETS.values(), "rotate-runbook-SECRET3"]:
        assert secret not in said


def test_a_secret_no_key_opens_is_named_refused_and_left_untouched(cast, settings):
    lost, old, new = _key(), _key(), _key()
    settings.ECSPORTAL_SECRET_KEYS = [lost]
    orphan = AwsAccount.objects.create(
        name="Orphaned Keys",
        account_id="123456789012",
        regions=["eu-west-1"],
        credential_source="keys",
        access_key_id="AKIAROTATE0000000002",
        secret_access_key_encrypted=crypto.encrypt("orphan-SECRET-value"),
    )
    settings.ECSPORTAL_SECRET_KEYS = [old]
    readable = _accounts()["Keys One"]
    stored = orphan.secret_access_key_encrypted

    settings.ECSPORTAL_SECRET_KEYS = [new, old]
    out = StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("rotate_secrets", stdout=out)

    message = str(refused.value)
    assert "account Orphaned Keys" in message and "left exactly as stored" in message
    assert "Put the key they were encrypted with back" in message
    assert "1 unreadable" in out.getvalue()
    orphan.refresh_from_db()
    assert orphan.secret_access_key_encrypted == stored  # not a byte changed
    readable.refresh_from_db()
    assert Fernet(new.encode()).decrypt(readable.secret_access_key_encrypted.encode())  # the others rotated

    settings.ECSPORTAL_SECRET_KEYS = [new, lost]  # the lost key found again: the orphan rotates too
    assert "1 secret(s) re-encrypted" in _rotate()
    settings.ECSPORTAL_SECRET_KEYS = [new]
    orphan.refresh_from_db()
    assert orphan.aws_config().secret_access_key == "orphan-SECRET-value"

    event = AuditEvent.objects.filter(action="secrets.rotate").order_by("id").first()
    assert event.details["unreadable"] == 1 and event.details["unreadable_rows"] == ["account Orphaned Keys"]
    assert "orphan-SECRET-value" not in _everything_said(message + out.getvalue())


def test_a_dry_run_counts_and_writes_nothing(cast, settings):
    old, new = _key(), _key()
    settings.ECSPORTAL_SECRET_KEYS = [old]
    _accounts()
    before = sorted(AwsAccount.objects.values_list("secret_access_key_encrypted", flat=True))
    settings.ECSPORTAL_SECRET_KEYS = [new, old]
    assert "2 secret(s) would be re-encrypted" in _rotate("--dry-run")
    assert sorted(AwsAccount.objects.values_list("secret_access_key_encrypted", flat=True)) == before
    assert AuditEvent.objects.get(action="secrets.rotate").details["dry_run"] is True


@pytest.mark.parametrize("keys", [[], ["not-a-fernet-key"]])
def test_a_broken_key_list_is_a_clear_error(cast, settings, keys):
    settings.ECSPORTAL_SECRET_KEYS = keys
    with pytest.raises(CommandError, match="ECSPORTAL_SECRET_KEYS"):
        _rotate()
