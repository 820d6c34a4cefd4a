from __future__ import annotations

from typing import Any

from django.http import HttpRequest

# Pages that belong to another navigation item than their own path says.
_SECTION_OF = {"stops": "approvals", "runs/new": "runs-new"}


def nav_section(path: str) -> str:
    """The navigation item a page belongs to: its first path segment ("/inventory/1/" → "inventory"), or a
    two-segment section where one path holds two items ("/runs/new/" → "runs-new")."""
    parts = path.strip("/").split("/")
    two = "/".join(parts[:2])
    return _SECTION_OF.get(two) or _SECTION_OF.get(parts[0], parts[0])


def portal(request: HttpRequest) -> dict[str, Any]:
    """Navigation facts every page needs, computed once per request."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from ecsportal.accounts.selectors import user_is_account_admin_anywhere

    return {"nav_is_admin": user_is_account_admin_anywhere(user=user), "nav_section": nav_section(request.path)}
