"""The access gate for accounts: the one place that decides who may see or do what.

Views, WebSocket consumers and the later apps (inventory, stopped tasks, approvals, runs) all
ask here. An account the user is not a member of is reported as "not found" (404), never as
"forbidden", so account names do not leak to outsiders; a member whose role is too low gets a
403 naming the role needed.
"""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from ecsportal.accounts.models import AwsAccount, Membership, Role
from ecsportal.accounts.scope import scope_of


def _own_role(user: AbstractBaseUser, account_pk: int) -> Role | None:
    if user.is_superuser:
        return Role.ADMIN
    role = Membership.objects.filter(user=user, account_id=account_pk).values_list("role", flat=True).first()
    return Role(role) if role is not None else None


def account_role_for_user(*, user: AbstractBaseUser, account: AwsAccount) -> Role | None:
    if not user.is_authenticated or not user.is_active:
        return None
    role = _own_role(user, account.pk)
    scope = scope_of(user)
    return scope.cap(account_pk=account.pk, role=role) if scope else role


def accounts_for_user(*, user: AbstractBaseUser, min_role: Role = Role.VIEWER) -> QuerySet[AwsAccount]:
    """Accounts the user may act on with at least `min_role` (disabled ones included)."""
    if not user.is_authenticated or not user.is_active:
        return AwsAccount.objects.none()
    scope = scope_of(user)
    if scope is not None:  # a token: its accounts where the capped role reaches min_role
        roles = roles_by_account_for_user(user=user)
        return AwsAccount.objects.filter(pk__in=[pk for pk, role in roles.items() if role >= min_role])
    if user.is_superuser:
        return AwsAccount.objects.all()
    return AwsAccount.objects.filter(memberships__user=user, memberships__role__gte=min_role).distinct()


def roles_by_account_for_user(*, user: AbstractBaseUser) -> dict[int, Role]:
    """Account pk → role, in one query, for list pages that show per-row buttons."""
    if not user.is_authenticated or not user.is_active:
        return {}
    if user.is_superuser:
        own = {pk: Role.ADMIN for pk in AwsAccount.objects.values_list("pk", flat=True)}
    else:
        own = {a: Role(r) for a, r in Membership.objects.filter(user=user).values_list("account_id", "role")}
    scope = scope_of(user)
    if scope is None:
        return own
    if scope.service:  # its grant, on accounts that still exist
        own = dict.fromkeys(AwsAccount.objects.filter(pk__in=scope.account_pks).values_list("pk", flat=True))
    capped = {pk: scope.cap(account_pk=pk, role=role) for pk, role in own.items()}
    return {pk: role for pk, role in capped.items() if role is not None}


def user_is_account_admin_anywhere(*, user: AbstractBaseUser) -> bool:
    if not user.is_authenticated:
        return False
    if scope_of(user) is not None:
        return any(role >= Role.ADMIN for role in roles_by_account_for_user(user=user).values())
    return user.is_superuser or Membership.objects.filter(user=user, role__gte=Role.ADMIN).exists()


def account_get_for_user(
    *, user: AbstractBaseUser, account_pk: int | str, min_role: Role = Role.VIEWER, enabled_only: bool = False
) -> AwsAccount:
    """Return the account if `user` holds at least `min_role` on it.

    Raises Http404 for a missing account or a non-member, PermissionDenied for a member whose
    role is too low (or for a disabled account when `enabled_only`).
    """
    try:
        account = AwsAccount.objects.get(pk=int(account_pk))
    except (AwsAccount.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("No such account.") from None
    role = account_role_for_user(user=user, account=account)
    if role is None:
        raise Http404("No such account.")
    if role < min_role:
        raise PermissionDenied(
            f"This needs the {min_role.label.lower()} role on {account.name}; you are {role.label.lower()}."
        )
    if enabled_only and not account.is_enabled:
        raise PermissionDenied(f"{account.name} is disabled; an admin can enable it again.")
    return account


def account_allows_role_arn(*, account: AwsAccount, role_arn: str) -> bool:
    """The seed's per-step role override: only ARNs the account's admin allowed (or the default)."""
    return not role_arn or role_arn == account.role_arn or role_arn in (account.allowed_role_arns or [])
