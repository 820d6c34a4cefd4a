"""Writes for accounts and memberships; each one audited in the same transaction."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from ecsportal.accounts.crypto import encrypt
from ecsportal.accounts.models import AwsAccount, CredentialSource, Membership, Role
from ecsportal.audit.services import audit_record
from ecsportal.aws import ecs
from ecsportal.aws.errors import AwsError
from ecsportal.aws.records import Identity

_FIELDS = (
    "name",
    "account_id",
    "regions",
    "credential_source",
    "access_key_id",
    "role_arn",
    "external_id",
    "session_name",
    "session_duration",
    "allowed_role_arns",
    "is_production",
    "approvals_for_stop",
    "approvals_for_commands",
    "approvals_for_runbooks",
    "approval_ttl_minutes",
    "shell_access",
    "shell_moderated",
    "shell_record_input",
    "shell_command",
    "shell_idle_minutes",
    "shell_max_minutes",
    "approvals_for_shell",
)


@sensitive_variables("data", "secret")  # error pages and reports never show the secret key
def _apply(account: AwsAccount, data: dict[str, Any]) -> list[str]:
    changed = []
    for name in _FIELDS:
        if name in data and getattr(account, name) != data[name]:
            setattr(account, name, data[name])
            changed.append(name)
    secret = data.get("secret_access_key") or ""
    if account.credential_source != CredentialSource.ACCESS_KEY:
        if account.secret_access_key_encrypted or account.access_key_id:
            account.secret_access_key_encrypted = ""
            account.access_key_id = ""
            changed.append("secret_access_key")
    elif secret:
        account.secret_access_key_encrypted = encrypt(secret)
        changed.append("secret_access_key")
    return changed


# What decides which AWS account the portal reaches; a change to any of them is checked again.
_CONNECTION = {
    "account_id",
    "credential_source",
    "access_key_id",
    "secret_access_key",
    "role_arn",
    "external_id",
    "session_name",
    "session_duration",
}


@sensitive_variables("data", "config")
def account_identity_check(*, data: dict[str, Any], account: AwsAccount | None = None) -> Identity | AwsError | None:
    """Ask STS which account the connection in `data` reaches, before it is saved.

    Returns the identity when it is the declared account, None when nothing about the
    connection changed, and otherwise the error: `AccountMismatch` (the view refuses to save:
    a wrong ID would show and count another account's resources under this one's name), or any
    other AwsError (AWS unreachable, credentials refused), which the view saves anyway with a
    warning, so accounts can be set up before their role exists or while AWS is unreachable;
    the collector checks again before every run and collects nothing from a mismatch.
    """
    candidate = AwsAccount.objects.get(pk=account.pk) if account is not None else AwsAccount()
    changed = _apply(candidate, data)
    if account is not None and not _CONNECTION.intersection(changed):
        return None
    try:
        config = candidate.aws_config()
        # A key of its own (the candidate is not saved; clients of the stored account stay as
        # they are), derived from the settings so repeated checks reuse one client.
        digest = hashlib.sha256(repr(dataclasses.astuple(config)).encode()).hexdigest()
        config = dataclasses.replace(config, key=f"check:{digest}")
        return ecs.verified_identity(config, candidate.regions[0] if candidate.regions else "us-east-1")
    except AwsError as exc:
        return exc
    except Exception as exc:  # e.g. an undecryptable stored secret: still a message, never a 500
        return AwsError(str(exc), code=type(exc).__name__)


def _audit_secret(*, actor: AbstractBaseUser, account: AwsAccount, changed: list[str], source_ip: str | None) -> None:
    """A stored secret set, replaced or removed is an event of its own (never its value), so
    it can be found in the trail without reading every account change."""
    if "secret_access_key" not in changed:
        return
    audit_record(
        actor=actor,
        action="account.secret_set" if account.secret_access_key_encrypted else "account.secret_removed",
        target=account.name,
        account=account,
        details={"access_key_id": account.access_key_id},
        source_ip=source_ip,
    )


# `with transaction.atomic()` rather than the decorator: the decorator's own frame would hold
# `data` (with the secret key) where sensitive_variables cannot hide it from error pages.
@sensitive_variables("data")
def account_create(*, actor: AbstractBaseUser, data: dict[str, Any], source_ip: str | None = None) -> AwsAccount:
    with transaction.atomic():
        account = AwsAccount()
        changed = _apply(account, data)
        account.save()
        audit_record(
            actor=actor,
            action="account.create",
            target=account.name,
            account=account,
            details={"fields": changed},
            source_ip=source_ip,
        )
        _audit_secret(actor=actor, account=account, changed=changed, source_ip=source_ip)
    return account


@sensitive_variables("data")
def account_update(
    *, actor: AbstractBaseUser, account: AwsAccount, data: dict[str, Any], source_ip: str | None = None
) -> AwsAccount:
    with transaction.atomic():
        account = AwsAccount.objects.select_for_update().get(pk=account.pk)
        changed = _apply(account, data)
        if changed:
            account.save()
            audit_record(
                actor=actor,
                action="account.update",
                target=account.name,
                account=account,
                details={"fields": changed},  # names only: never the values of secrets
                source_ip=source_ip,
            )
            _audit_secret(actor=actor, account=account, changed=changed, source_ip=source_ip)
    return account


@transaction.atomic
def account_set_enabled(
    *, actor: AbstractBaseUser, account: AwsAccount, enabled: bool, source_ip: str | None = None
) -> AwsAccount:
    AwsAccount.objects.filter(pk=account.pk).update(is_enabled=enabled)
    account.refresh_from_db()
    audit_record(
        actor=actor,
        action="account.enable" if enabled else "account.disable",
        target=account.name,
        account=account,
        source_ip=source_ip,
    )
    return account


@transaction.atomic
def membership_set(
    *, actor: AbstractBaseUser, account: AwsAccount, user: AbstractBaseUser, role: int, source_ip: str | None = None
) -> Membership:
    membership, created = Membership.objects.update_or_create(user=user, account=account, defaults={"role": role})
    audit_record(
        actor=actor,
        action="membership.add" if created else "membership.change",
        target=user.get_username(),
        account=account,
        details={"role": Role(role).label},
        source_ip=source_ip,
    )
    return membership


@transaction.atomic
def membership_remove(
    *, actor: AbstractBaseUser, account: AwsAccount, membership_pk: int, source_ip: str | None = None
) -> None:
    membership = Membership.objects.select_related("user").filter(account=account, pk=membership_pk).first()
    if membership is None:
        return
    username = membership.user.get_username()
    membership.delete()
    audit_record(actor=actor, action="membership.remove", target=username, account=account, source_ip=source_ip)


def account_test_connection(
    *, actor: AbstractBaseUser, account: AwsAccount, source_ip: str | None = None
) -> tuple[Identity | None, AwsError | None]:
    """Call STS GetCallerIdentity through the configured chain and role; record the outcome."""
    region = account.regions[0] if account.regions else "us-east-1"
    identity: Identity | None = None
    error: AwsError | None = None
    try:
        identity = ecs.caller_identity(account.aws_config(), region)
    except AwsError as exc:
        error = exc
    except Exception as exc:  # e.g. an undecryptable secret: still a clear message
        error = AwsError(str(exc), code=type(exc).__name__)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="account.test_connection",
            target=account.name,
            account=account,
            details={
                "ok": error is None,
                "reached": identity.account_id if identity else "",
                "error_code": error.code if error else "",
            },
            source_ip=source_ip,
        )
    return identity, error


@dataclasses.dataclass
class RotationReport:
    """What `secrets_rotate` did: counts, and the rows it could not read (named, never shown)."""

    rotated: int = 0
    current: int = 0
    unreadable: list[str] = dataclasses.field(default_factory=list)
    keys: int = 0
    dry_run: bool = False


def secrets_rotate(*, dry_run: bool = False) -> RotationReport:
    """Re-encrypt every stored secret under the first key of ECSPORTAL_SECRET_KEYS.

    Idempotent: a secret the first key already opens is left as it is. A secret no configured
    key opens is left untouched (and named in the report), so an operator who dropped a key too
    early can put it back and run again. Each row is replaced only if it still holds the
    ciphertext that was read (a concurrent edit wins). One audit event per call, counts only.
    """
    from django.apps import apps

    from ecsportal.accounts import crypto

    report = RotationReport(keys=crypto.check_keys(), dry_run=dry_run)
    with transaction.atomic():
        for (label, field), describe in crypto.SEALED_FIELDS.items():
            model = apps.get_model(label)
            rows = model.objects.exclude(**{field: ""}).order_by("pk")
            for row in rows.select_for_update() if not dry_run else rows:
                ciphertext = getattr(row, field)
                if crypto.is_current(ciphertext):
                    report.current += 1
                    continue
                try:
                    fresh = crypto.rotate(ciphertext)
                except crypto.SecretUnreadable:
                    report.unreadable.append(describe(row))
                    continue
                if dry_run:
                    report.rotated += 1
                else:  # conditional: a secret changed meanwhile is not overwritten, nor counted
                    report.rotated += model.objects.filter(pk=row.pk, **{field: ciphertext}).update(**{field: fresh})
        audit_record(
            actor=None,
            action="secrets.rotate",
            target="ECSPORTAL_SECRET_KEYS",
            details={
                "rotated": report.rotated,
                "already_current": report.current,
                "unreadable": len(report.unreadable),
                "unreadable_rows": report.unreadable,
                "keys_configured": report.keys,
                "dry_run": dry_run,
            },
        )
    return report
