from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def portal(request: HttpRequest) -> dict[str, Any]:
    """Navigation facts every page needs, computed once per request."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from ecsportal.accounts.selectors import user_is_account_admin_anywhere

    return {"nav_is_admin": user_is_account_admin_anywhere(user=user)}
