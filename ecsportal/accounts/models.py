from __future__ import annotations

from django.conf import settings
from django.db import models

from ecsportal.aws.sessions import AccountConfig


class Role(models.IntegerChoices):
    """Each role includes the ones below it."""

    VIEWER = 10, "Viewer"
    OPERATOR = 20, "Operator"
    APPROVER = 30, "Approver"
    ADMIN = 40, "Admin"


class CredentialSource(models.TextChoices):
    DEFAULT_CHAIN = "default", "Portal's default chain (environment, profile, instance or task role)"
    ACCESS_KEY = "keys", "Stored access key"


class ShellAccess(models.TextChoices):
    """Who may open an interactive shell on an account's containers (ecsportal.shells.policy)."""

    OFF = "off", "Off: nobody opens shells"
    OPERATORS = "operators", "Allowed for operators"
    REQUEST = "request", "Access request: an approved, time-boxed grant per target"


SHELL_COMMAND_AUTO = "auto"  # the runtime uses bash when the image has it, else sh


class AwsAccount(models.Model):
    name = models.CharField(max_length=100, unique=True)
    account_id = models.CharField(max_length=12)
    regions = models.JSONField(default=list)
    credential_source = models.CharField(
        max_length=16, choices=CredentialSource.choices, default=CredentialSource.DEFAULT_CHAIN
    )
    access_key_id = models.CharField(max_length=128, blank=True)
    # Fernet ciphertext; never rendered, never logged (see accounts/crypto.py).
    secret_access_key_encrypted = models.TextField(blank=True, editable=False)
    role_arn = models.CharField(max_length=2048, blank=True)
    external_id = models.CharField(max_length=1224, blank=True)
    session_name = models.CharField(max_length=64, default="ecsportal")
    session_duration = models.PositiveIntegerField(default=3600)
    allowed_role_arns = models.JSONField(default=list, blank=True)
    is_enabled = models.BooleanField(default=True)
    is_production = models.BooleanField(default=False)
    # Approval policy (read by ecsportal.approvals.policy): how many distinct approvers each
    # kind of action needs on this account; 0 runs at once (still audited).
    approvals_for_stop = models.PositiveSmallIntegerField(default=1)
    approvals_for_commands = models.PositiveSmallIntegerField(null=True, blank=True)  # None: 1 on production, else 0
    approvals_for_runbooks = models.PositiveSmallIntegerField(default=1)  # runbooks marked as needing approval
    approval_ttl_minutes = models.PositiveIntegerField(default=60)
    # Interactive shells (read by ecsportal.shells.policy). "" : access request on a production
    # account, allowed for operators elsewhere.
    shell_access = models.CharField(max_length=16, choices=ShellAccess.choices, blank=True, default="")
    shell_moderated = models.BooleanField(default=False)  # input only while an approver watches
    shell_record_input = models.BooleanField(default=False)  # input bytes kept in the recording
    shell_command = models.CharField(max_length=200, default=SHELL_COMMAND_AUTO)
    shell_idle_minutes = models.PositiveSmallIntegerField(default=15)
    shell_max_minutes = models.PositiveSmallIntegerField(default=60)
    approvals_for_shell = models.PositiveSmallIntegerField(default=1)  # approvers of a shell access request
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.account_id})"

    @property
    def effective_shell_access(self) -> ShellAccess:
        if self.shell_access:
            return ShellAccess(self.shell_access)
        return ShellAccess.REQUEST if self.is_production else ShellAccess.OPERATORS

    @property
    def has_stored_secret(self) -> bool:
        return bool(self.secret_access_key_encrypted)

    def aws_config(self) -> AccountConfig:
        """The plain record the AWS layer works from; decrypts the secret only here."""
        from ecsportal.accounts.crypto import SecretUnreadable, decrypt
        from ecsportal.aws.errors import CredentialsError

        secret = ""
        if self.credential_source == CredentialSource.ACCESS_KEY and self.secret_access_key_encrypted:
            try:
                secret = decrypt(self.secret_access_key_encrypted)
            except SecretUnreadable as exc:
                # An AwsError like any other, so pages and the collector report it on this
                # account alone instead of failing.
                raise CredentialsError(f"{self.name}: {exc}", code="SecretUnreadable") from exc
        return AccountConfig(
            key=f"{self.pk}:{self.updated_at.timestamp() if self.updated_at else 0}",
            account_id=self.account_id,
            access_key_id=self.access_key_id if self.credential_source == CredentialSource.ACCESS_KEY else "",
            secret_access_key=secret,
            role_arn=self.role_arn,
            external_id=self.external_id,
            session_name=self.session_name,
            session_duration=self.session_duration,
        )


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="aws_memberships")
    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="memberships")
    role = models.PositiveSmallIntegerField(choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "account"], name="one_membership_per_account")]
        ordering = ["account__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} is {self.get_role_display()} on {self.account.name}"
