from __future__ import annotations

from typing import Any

from django.http import HttpRequest

# Pages that belong to another navigation item than their own path says.
_SECTION_OF = {"stops": "approvals"}


def nav_section(path: str) -> str:
    """The navigation item a page belongs to: its first path segment ("/inventory/1/" → "inventory")."""
    first = path.strip("/").split("/", 1)[0]
    return _SECTION_OF.get(first, first)


def portal(request: HttpRequest) -> dict[str, Any]:
    """Navigation facts every page needs, computed once per request."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from ecsportal.accounts.selectors import user_is_account_admin_anywhere

    return {"nav_is_admin": user_is_account_admin_anywhere(user=user), "nav_section": nav_section(request.path)}
