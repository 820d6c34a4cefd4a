"""Secrets at rest: MultiFernet over ECSPORTAL_SECRET_KEYS (first key encrypts, all decrypt)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

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
    try:
        return _fernet(tuple(settings.ECSPORTAL_SECRET_KEYS)).rotate(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("No key in ECSPORTAL_SECRET_KEYS opens this secret.") from exc


def check_keys() -> int:
    """The number of configured keys; ImproperlyConfigured when the list is empty or malformed."""
    keys = tuple(settings.ECSPORTAL_SECRET_KEYS)
    _fernet(keys)
    return len(keys)


def is_current(ciphertext: str) -> bool:
    """True when the first (newest) key opens it: rotation has nothing to do."""
    keys = tuple(settings.ECSPORTAL_SECRET_KEYS)
    _fernet(keys)  # the same clear error as encrypt() for an empty or malformed list
    try:
        Fernet(keys[0].encode()).decrypt(ciphertext.encode())
    except InvalidToken:
        return False
    return True


# Every model field that holds ciphertext from this module, registered by the owning app's
# AppConfig.ready() as (model label, field) → describe, so `manage.py rotate_secrets` reaches
# all of them without this app importing the others. `describe(row)` names the row for people
# (an account's name, "run #12"): never the value.
SEALED_FIELDS: dict[tuple[str, str], Callable[[Any], str]] = {}


def register_sealed(model_label: str, field: str, describe: Callable[[Any], str]) -> None:
    SEALED_FIELDS[(model_label, field)] = describe
