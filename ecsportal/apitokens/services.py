"""Writes for API tokens: create (the secret returned once), revoke, authenticate, last use."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from ecsportal.accounts.models import AwsAccount, Role
from ecsportal.accounts.scope import TokenScope, attach_scope
from ecsportal.accounts.selectors import roles_by_account_for_user
from ecsportal.apitokens.models import ApiToken, TokenKind
from ecsportal.audit.services import audit_record

TOKEN_RE = re.compile(r"^ecsp_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")
SERVICE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
SERVICE_USER_PREFIX = "svc-"


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # the whole token: shown once, never stored


class TokenRefused(ValidationError):
    def __str__(self) -> str:
        return " ".join(self.messages)


class TokenInvalid(Exception):
    """Authentication failed; the message says which way (never echoing the token)."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _mint() -> tuple[str, str]:
    prefix = secrets.token_hex(4)
    return prefix, f"ecsp_{prefix}_{secrets.token_urlsafe(32)}"


def _check_common(*, name: str, days: int, accounts: list[AwsAccount]) -> None:
    limit = settings.ECSPORTAL_API_TOKEN_MAX_DAYS
    if not name.strip():
        raise TokenRefused("Give the token a name that says where it is used.")
    if not 1 <= days <= limit:
        raise TokenRefused(f"A token lives 1 to {limit} days; you asked for {days}.")
    if not accounts:
        raise TokenRefused("Pick at least one account the token may reach.")


def _save(
    *,
    kind: str,
    name: str,
    user: AbstractBaseUser,
    actor: AbstractBaseUser,
    days: int,
    accounts: list[AwsAccount],
    max_role: Role,
    source_ip: str | None,
) -> NewToken:
    for _ in range(5):  # a prefix clash (one in four billion) just draws again
        prefix, secret = _mint()
        try:
            with transaction.atomic():
                token = ApiToken.objects.create(
                    kind=kind,
                    name=name.strip(),
                    user=user,
                    created_by=actor,
                    prefix=prefix,
                    secret_sha256=_digest(secret),
                    max_role=max_role,
                    expires_at=timezone.now() + timedelta(days=days),
                )
                token.accounts.set(accounts)
                for account in accounts:
                    audit_record(
                        actor=actor,
                        action="api_token.created",
                        target=token.label,
                        account=account,
                        details={
                            "api_token": token.label,
                            "kind": kind,
                            "max_role": Role(max_role).label,
                            "expires_at": token.expires_at.isoformat(),
                            "owner": user.get_username(),
                        },
                        source_ip=source_ip,
                    )
                return NewToken(token=token, secret=secret)
        except IntegrityError:
            continue
    raise TokenRefused("Could not create a token; try again.")


def token_create_personal(
    *,
    actor: AbstractBaseUser,
    name: str,
    days: int,
    account_pks: list[int],
    max_role: Role,
    source_ip: str | None = None,
) -> NewToken:
    """A personal token: the user's own accounts only, a role no higher than theirs there."""
    roles = roles_by_account_for_user(user=actor)
    accounts = list(AwsAccount.objects.filter(pk__in=account_pks).order_by("name"))
    if len(accounts) != len(set(account_pks)) or any(a.pk not in roles for a in accounts):
        raise TokenRefused("Pick only accounts you are a member of.")
    _check_common(name=name, days=days, accounts=accounts)
    top = max(roles[a.pk] for a in accounts)
    if max_role > top:
        raise TokenRefused(f"The token's role cannot be above your own: you are at most {top.label.lower()} there.")
    limit = settings.ECSPORTAL_API_TOKENS_PER_USER
    live = ApiToken.objects.filter(
        user=actor, kind=TokenKind.PERSONAL, revoked_at=None, expires_at__gt=timezone.now()
    ).count()
    if live >= limit:
        raise TokenRefused(f"You have {live} active tokens, the limit; revoke one you no longer use first.")
    return _save(
        kind=TokenKind.PERSONAL,
        name=name,
        user=actor,
        actor=actor,
        days=days,
        accounts=accounts,
        max_role=max_role,
        source_ip=source_ip,
    )


def token_create_service(
    *,
    actor: AbstractBaseUser,
    name: str,
    days: int,
    account_pks: list[int],
    max_role: Role,
    source_ip: str | None = None,
) -> NewToken:
    """A service token for CI (portal admins only): it acts as its own user, `svc-<name>`."""
    if not actor.is_superuser:
        raise PermissionDenied("Only portal administrators create service tokens.")
    if not SERVICE_NAME_RE.match(name or ""):
        raise TokenRefused("A service token's name is 1-40 lowercase letters, digits and hyphens, e.g. deploy-ci.")
    accounts = list(AwsAccount.objects.filter(pk__in=account_pks).order_by("name"))
    _check_common(name=name, days=days, accounts=accounts)
    if max_role >= Role.APPROVER:
        raise TokenRefused("A service token can be viewer or operator: approving and administering need a person.")
    username = SERVICE_USER_PREFIX + name
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is not None and not ApiToken.objects.filter(user=user, kind=TokenKind.SERVICE).exists():
        raise TokenRefused(f"A person's login is already named {username}; choose another name.")
    if user is None:
        user = user_model(username=username, is_active=True)
        user.set_unusable_password()
        user.save()
    return _save(
        kind=TokenKind.SERVICE,
        name=name,
        user=user,
        actor=actor,
        days=days,
        accounts=accounts,
        max_role=max_role,
        source_ip=source_ip,
    )


def token_revoke(*, actor: AbstractBaseUser, token: ApiToken, source_ip: str | None = None) -> ApiToken:
    with transaction.atomic():
        changed = ApiToken.objects.filter(pk=token.pk, revoked_at=None).update(
            revoked_at=timezone.now(), revoked_by=actor
        )
        if not changed:
            raise TokenRefused("This token was already revoked.")
        for account in token.accounts.all():
            audit_record(
                actor=actor,
                action="api_token.revoked",
                target=token.label,
                account=account,
                details={"api_token": token.label, "kind": token.kind},
                source_ip=source_ip,
            )
    token.refresh_from_db()
    return token


def scope_for(token: ApiToken) -> TokenScope:
    return TokenScope(
        token_pk=token.pk,
        label=token.label,
        account_pks=frozenset(a.pk for a in token.accounts.all()),
        max_role=Role(token.max_role),
        service=token.kind == TokenKind.SERVICE,
    )


def token_authenticate(*, presented: str, source_ip: str | None = None) -> tuple[ApiToken, AbstractBaseUser]:
    """The token's user, carrying the token's scope; TokenInvalid says why not."""
    match = TOKEN_RE.match(presented or "")
    if not match:
        raise TokenInvalid("The Authorization header does not hold an ecsportal token (Bearer ecsp_…).")
    token = ApiToken.objects.select_related("user").prefetch_related("accounts").filter(prefix=match[1]).first()
    if token is None or not hmac.compare_digest(token.secret_sha256, _digest(presented)):
        raise TokenInvalid("This token is not known; create one on the API tokens page.")
    if token.revoked_at is not None:
        raise TokenInvalid(f"Token {token.label} was revoked; create a new one on the API tokens page.")
    now = timezone.now()
    if token.expires_at <= now:
        raise TokenInvalid(f"Token {token.label} expired at {token.expires_at:%Y-%m-%d %H:%M} UTC; create a new one.")
    if not token.user.is_active:
        raise TokenInvalid(f"The login behind token {token.label} is deactivated.")
    _touch(token, now=now, source_ip=source_ip)
    return token, attach_scope(token.user, scope_for(token))


def _touch(token: ApiToken, *, now, source_ip: str | None) -> None:
    """Last use, written at most every 30 s per token (and at once when the address changes)."""
    stale = token.last_used_at is None or now - token.last_used_at > timedelta(seconds=30)
    if stale or token.last_used_ip != source_ip:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=source_ip)
