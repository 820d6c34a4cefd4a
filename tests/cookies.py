"""Logged-in session cookies for WebSocket tests (the browser's cookie, not force_login's client)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.test import Client


def logged_in(user: AbstractBaseUser) -> tuple[Client, str]:
    """A test client logged in as `user`, and the Cookie header value a browser would send with it."""
    client = Client()
    client.force_login(user)
    return client, f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def session_cookie(user: AbstractBaseUser) -> bytes:
    """Only the Cookie header, as the bytes an ASGI scope carries."""
    return logged_in(user)[1].encode()
