"""Reads of API tokens: a user's own, the service ones (portal admins), and the one to revoke."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from ecsportal.apitokens.models import ApiToken, TokenKind


def tokens_of_user(*, user: AbstractBaseUser) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user, kind=TokenKind.PERSONAL).prefetch_related("accounts")


def service_tokens(*, user: AbstractBaseUser) -> QuerySet[ApiToken]:
    if not user.is_superuser:
        return ApiToken.objects.none()
    return ApiToken.objects.filter(kind=TokenKind.SERVICE).select_related("created_by").prefetch_related("accounts")


def token_get_for_user(*, user: AbstractBaseUser, token_pk: int | str) -> ApiToken:
    """The token the user may revoke: their own personal one, or (portal admins) a service one."""
    try:
        token = ApiToken.objects.get(pk=int(token_pk))
    except (ApiToken.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("No such token.") from None
    if token.kind == TokenKind.PERSONAL and token.user_id == user.pk:
        return token
    if token.kind == TokenKind.SERVICE and user.is_superuser:
        return token
    if token.kind == TokenKind.SERVICE:
        raise PermissionDenied("Only portal administrators revoke service tokens.")
    raise Http404("No such token.")
