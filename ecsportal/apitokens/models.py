"""API tokens: personal ones, and service ones that portal admins create for CI.

A token is `ecsp_<prefix>_<secret>`: the prefix (8 hex characters) is stored and shown to
find it; only the sha256 of the whole token is kept, so the database cannot give a token
back. What a token may do is its scope (accounts, maximum role), applied by the accounts
gate (`accounts.scope`); a service token acts as a user of its own that holds no memberships.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from ecsportal.accounts.models import AwsAccount, Role


class TokenKind(models.TextChoices):
    PERSONAL = "personal", "Personal"
    SERVICE = "service", "Service"


class ApiToken(models.Model):
    kind = models.CharField(max_length=16, choices=TokenKind.choices, default=TokenKind.PERSONAL)
    name = models.CharField(max_length=100)
    # Personal: its owner. Service: the token's own user (no memberships, no password).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    prefix = models.CharField(max_length=16, unique=True)
    secret_sha256 = models.CharField(max_length=64)
    accounts = models.ManyToManyField(AwsAccount, related_name="api_tokens")
    max_role = models.IntegerField(choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return f"ecsp_{self.prefix} ({self.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.expires_at > timezone.now() else "expired"
