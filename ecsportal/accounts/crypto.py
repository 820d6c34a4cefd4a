"""Secrets at rest: MultiFernet over ECSPORTAL_SECRET_KEYS (first key encrypts, all decrypt)."""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """The stored secret was encrypted with a key that is no longer configured."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("ECSPORTAL_SECRET_KEYS is empty; secrets cannot be encrypted.")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "ECSPORTAL_SECRET_KEYS holds a value that is not a Fernet key (32 url-safe base64 bytes)."
        ) from exc


def encrypt(plaintext: str) -> str:
    return _fernet(tuple(settings.ECSPORTAL_SECRET_KEYS)).encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _fernet(tuple(settings.ECSPORTAL_SECRET_KEYS)).decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable(
            "The stored secret key cannot be decrypted with ECSPORTAL_SECRET_KEYS; "
            "add the old key back to the list or enter the secret again."
        ) from exc


def rotate(ciphertext: str) -> str:
    """Re-encrypt under the first key (after a new key was put at the front of the list)."""
    return _fernet(tuple(settings.ECSPORTAL_SECRET_KEYS)).rotate(ciphertext.encode()).decode()
