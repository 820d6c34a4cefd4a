"""Fixtures of the API tests: tokens for the cast, and a client that sends one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ecsportal.accounts.models import AwsAccount, Role
from ecsportal.apitokens.models import ApiToken
from ecsportal.apitokens.services import token_create_personal, token_create_service


def make_token(user, *, accounts: list[AwsAccount] | None = None, role: Role = Role.ADMIN, name: str = "t") -> str:
    from ecsportal.accounts.selectors import roles_by_account_for_user

    roles = roles_by_account_for_user(user=user)
    accounts = accounts if accounts is not None else list(AwsAccount.objects.filter(pk__in=roles))
    top = max((roles[a.pk] for a in accounts), default=Role.VIEWER)
    return token_create_personal(
        actor=user, name=name, days=30, account_pks=[a.pk for a in accounts], max_role=min(role, top)
    ).secret


def make_service_token(admin, *, accounts: list[AwsAccount], role: Role = Role.OPERATOR, name: str = "ci") -> str:
    return token_create_service(
        actor=admin, name=name, days=30, account_pks=[a.pk for a in accounts], max_role=role
    ).secret


def expire(secret: str) -> None:
    ApiToken.objects.filter(prefix=secret.split("_")[1]).update(expires_at=timezone.now() - timedelta(seconds=1))


@pytest.fixture
def bearer(client):
    """`bearer(secret).get(url)`: the test client sending that token."""

    class _Bearer:
        def __init__(self, secret: str) -> None:
            self.headers = {"Authorization": f"Bearer {secret}"}

        def get(self, url: str, **params):
            return client.get(url, params, headers=self.headers)

        def post(self, url: str, body: dict | None = None):
            return client.post(url, body or {}, content_type="application/json", headers=self.headers)

    return _Bearer
