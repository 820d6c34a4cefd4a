"""The access gate itself, as the other apps call it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from ecsportal.accounts.models import AwsAccount, Role
from ecsportal.accounts.selectors import (
    account_allows_role_arn,
    account_get_for_user,
    account_role_for_user,
    accounts_for_user,
    roles_by_account_for_user,
)
from ecsportal.demo import localaws

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("user", "role"),
    [("viewer", Role.VIEWER), ("operator", Role.OPERATOR), ("approver", Role.APPROVER), ("admin", Role.ADMIN)],
)
def test_each_role_is_reported(cast, user, role):
    assert account_role_for_user(user=getattr(cast, user), account=cast.prod) == role


def test_roles_include_the_ones_below(cast):
    names = {a.name for a in accounts_for_user(user=cast.approver, min_role=Role.OPERATOR)}
    assert names == {"Acme Production", "Acme Staging"}
    assert not accounts_for_user(user=cast.operator, min_role=Role.APPROVER).exists()


def test_superusers_are_admins_everywhere(cast):
    assert set(roles_by_account_for_user(user=cast.admin).values()) == {Role.ADMIN}
    assert accounts_for_user(user=cast.admin, min_role=Role.ADMIN).count() == AwsAccount.objects.count()


def test_outsider_is_told_not_found_and_member_below_the_role_forbidden(cast):
    with pytest.raises(Http404):
        account_get_for_user(user=cast.outsider, account_pk=cast.prod.pk)
    with pytest.raises(PermissionDenied, match="needs the operator role on Acme Production; you are viewer"):
        account_get_for_user(user=cast.viewer, account_pk=cast.prod.pk, min_role=Role.OPERATOR)


@pytest.mark.parametrize("pk", ["x", "", None, "999999"])
def test_malformed_or_missing_ids_are_not_found(cast, pk):
    with pytest.raises(Http404):
        account_get_for_user(user=cast.admin, account_pk=pk)


def test_inactive_and_anonymous_users_get_nothing(cast):
    cast.operator.is_active = False
    cast.operator.save()
    assert not accounts_for_user(user=cast.operator).exists()
    assert account_role_for_user(user=cast.operator, account=cast.prod) is None
    assert not accounts_for_user(user=AnonymousUser()).exists()
    assert roles_by_account_for_user(user=AnonymousUser()) == {}
    with pytest.raises(Http404):
        account_get_for_user(user=AnonymousUser(), account_pk=cast.prod.pk)


def test_disabled_accounts_are_refused_where_asked(cast):
    AwsAccount.objects.filter(pk=cast.prod.pk).update(is_enabled=False)
    assert account_get_for_user(user=cast.viewer, account_pk=cast.prod.pk) is not None
    with pytest.raises(PermissionDenied, match="is disabled"):
        account_get_for_user(user=cast.viewer, account_pk=cast.prod.pk, enabled_only=True)


def test_only_the_default_or_an_allowed_role_may_be_picked(cast):
    assert account_allows_role_arn(account=cast.staging, role_arn="")
    assert account_allows_role_arn(account=cast.staging, role_arn=localaws.ROLE_B)
    assert account_allows_role_arn(account=cast.staging, role_arn=localaws.ROLE_B_READONLY)
    assert not account_allows_role_arn(account=cast.staging, role_arn=f"arn:aws:iam::{localaws.ACCOUNT_B}:role/admin")
    assert not account_allows_role_arn(account=cast.prod, role_arn=localaws.ROLE_B_READONLY)
