"""A token's limits on what its user may do, honoured by the access gate.

An API call authenticated by a token acts as the token's user, but never beyond the token:
only the accounts it names, and no role above its maximum. The API attaches a `TokenScope`
to the user object (`attach_scope`) and every gate function in `selectors.py` asks
`scope_of(user)`, so pages' gates, services and selectors enforce the token's limits
without knowing about tokens. A service token's user holds no memberships: its scope is
its grant (`service=True`), the role it gives on each of its accounts.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser

from ecsportal.accounts.models import Role

_ATTR = "ecsportal_token_scope"


@dataclass(frozen=True)
class TokenScope:
    token_pk: int
    label: str  # "ecsp_ab12cd34 (deploy-bot)": the prefix and name, never the secret
    account_pks: frozenset[int]
    max_role: Role
    service: bool = False

    def cap(self, *, account_pk: int, role: Role | None) -> Role | None:
        """The role the token allows on an account, given the user's own (None: no access)."""
        if account_pk not in self.account_pks:
            return None
        if self.service:
            return self.max_role
        if role is None:
            return None
        return min(role, self.max_role)


def attach_scope(user: AbstractBaseUser, scope: TokenScope) -> AbstractBaseUser:
    setattr(user, _ATTR, scope)
    return user


def scope_of(user: AbstractBaseUser) -> TokenScope | None:
    return getattr(user, _ATTR, None)
