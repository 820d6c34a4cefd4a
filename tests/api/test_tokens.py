"""API tokens: hashed, shown once, scoped, expiring, limited, revocable; the tokens page."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from ecsportal.accounts.models import Role
from ecsportal.apitokens.models import ApiToken
from ecsportal.apitokens.services import (
    TokenInvalid,
    TokenRefused,
    token_authenticate,
    token_create_personal,
    token_create_service,
    token_revoke,
)
from ecsportal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_a_token_is_kept_only_as_its_hash_with_a_visible_prefix(cast):
    new = token_create_personal(
        actor=cast.operator, name="laptop", days=7, account_pks=[cast.prod.pk], max_role=Role.OPERATOR
    )
    row = ApiToken.objects.get(pk=new.token.pk)
    assert new.secret.startswith(f"ecsp_{row.prefix}_")
    assert row.secret_sha256 == hashlib.sha256(new.secret.encode()).hexdigest()
    secret_part = new.secret.split("_", 2)[2]
    assert all(secret_part not in str(value) for value in row.__dict__.values())
    event = AuditEvent.objects.get(action="api_token.created")
    assert event.details["api_token"] == row.label and secret_part not in str(event.details)


def test_a_personal_token_never_outranks_its_owner(cast):
    with pytest.raises(TokenRefused, match="cannot be above your own"):
        token_create_personal(actor=cast.viewer, name="x", days=7, account_pks=[cast.prod.pk], max_role=Role.OPERATOR)


def test_a_personal_token_reaches_only_its_owners_accounts(cast):
    with pytest.raises(TokenRefused, match="only accounts you are a member of"):
        token_create_personal(actor=cast.operator, name="x", days=7, account_pks=[cast.other.pk], max_role=Role.VIEWER)


@pytest.mark.parametrize("days", [0, 91, 10_000])
def test_a_token_lives_between_one_day_and_the_maximum(cast, days):
    with pytest.raises(TokenRefused, match="1 to 90 days"):
        token_create_personal(
            actor=cast.operator, name="x", days=days, account_pks=[cast.prod.pk], max_role=Role.VIEWER
        )


def test_active_tokens_per_user_are_limited_and_the_refusal_says_what_to_do(cast, settings):
    settings.ECSPORTAL_API_TOKENS_PER_USER = 2
    made = [
        token_create_personal(
            actor=cast.operator, name=f"t{i}", days=1, account_pks=[cast.prod.pk], max_role=Role.VIEWER
        )
        for i in range(2)
    ]
    with pytest.raises(TokenRefused, match="revoke one you no longer use"):
        token_create_personal(actor=cast.operator, name="t3", days=1, account_pks=[cast.prod.pk], max_role=Role.VIEWER)
    token_revoke(actor=cast.operator, token=made[0].token)
    token_create_personal(actor=cast.operator, name="t3", days=1, account_pks=[cast.prod.pk], max_role=Role.VIEWER)


def test_service_tokens_are_for_portal_admins_and_cannot_approve(cast):
    with pytest.raises(PermissionDenied):
        token_create_service(actor=cast.operator, name="ci", days=7, account_pks=[cast.prod.pk], max_role=Role.VIEWER)
    with pytest.raises(TokenRefused, match="viewer or operator"):
        token_create_service(actor=cast.admin, name="ci", days=7, account_pks=[cast.prod.pk], max_role=Role.APPROVER)
    new = token_create_service(
        actor=cast.admin, name="deploy-ci", days=7, account_pks=[cast.prod.pk], max_role=Role.OPERATOR
    )
    assert new.token.user.username == "svc-deploy-ci" and not new.token.user.has_usable_password()
    _token, user = token_authenticate(presented=new.secret)
    from ecsportal.accounts.selectors import roles_by_account_for_user

    assert roles_by_account_for_user(user=user) == {cast.prod.pk: Role.OPERATOR}


def test_revoked_and_expired_tokens_are_refused_saying_which(cast):
    a = token_create_personal(actor=cast.operator, name="a", days=1, account_pks=[cast.prod.pk], max_role=Role.VIEWER)
    b = token_create_personal(actor=cast.operator, name="b", days=1, account_pks=[cast.prod.pk], max_role=Role.VIEWER)
    token_revoke(actor=cast.operator, token=a.token)
    with pytest.raises(TokenRefused, match="already revoked"):
        token_revoke(actor=cast.operator, token=a.token)
    ApiToken.objects.filter(pk=b.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(TokenInvalid, match="was revoked"):
        token_authenticate(presented=a.secret)
    with pytest.raises(TokenInvalid, match="expired"):
        token_authenticate(presented=b.secret)
    with pytest.raises(TokenInvalid, match="not known"):
        token_authenticate(presented=b.secret[:-1] + ("A" if b.secret[-1] != "A" else "B"))


def test_the_tokens_page_shows_a_new_token_once(cast, login):
    client = login(cast.operator)
    answer = client.post(
        "/tokens/new/",
        {
            "personal-name": "laptop",
            "personal-days": "7",
            "personal-accounts": [cast.prod.pk],
            "personal-max_role": "20",
        },
    )
    assert answer.status_code == 200 and "no-store" in answer["Cache-Control"]
    secret = re.search(r'value="(ecsp_[^"]+)"', answer.content.decode())[1]
    listing = client.get("/tokens/").content.decode()
    assert "laptop" in listing and secret.split("_")[1] in listing  # the prefix, to recognise it
    assert secret not in listing and secret.split("_", 2)[2] not in listing


def test_the_tokens_page_keeps_the_input_and_says_why_on_a_refusal(cast, login):
    client = login(cast.viewer)
    answer = client.post(
        "/tokens/new/",
        {
            "personal-name": "laptop",
            "personal-days": "7",
            "personal-accounts": [cast.prod.pk],
            "personal-max_role": "20",
        },
    )
    page = answer.content.decode()
    assert answer.status_code == 422 and "cannot be above your own" in page and 'value="laptop"' in page
    assert not ApiToken.objects.exists()


def test_nobody_revokes_another_users_token(cast, login):
    new = token_create_personal(
        actor=cast.viewer, name="mine", days=1, account_pks=[cast.prod.pk], max_role=Role.VIEWER
    )
    assert login(cast.operator).post(f"/tokens/{new.token.pk}/revoke/").status_code == 404
    assert ApiToken.objects.get(pk=new.token.pk).revoked_at is None
    assert login(cast.viewer).post(f"/tokens/{new.token.pk}/revoke/").status_code == 302
    assert ApiToken.objects.get(pk=new.token.pk).revoked_at is not None
