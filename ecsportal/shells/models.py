"""Shell access grants: what an approved access request leaves behind.

A grant lets its user open shells on its target (one container of one task, or any container
of any task of one service) until `expires_at`. It is read by `policy.shell_permit`; the
account's policy and the user's role are checked there too, so a grant never outlives a
lowered role or a policy turned off.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from ecsportal.accounts.models import AwsAccount
from ecsportal.approvals.models import ApprovalRequest


class GrantScope(models.TextChoices):
    CONTAINER = "container", "This container of this task"
    SERVICE = "service", "Any task of this service"


class ShellGrant(models.Model):
    request = models.OneToOneField(ApprovalRequest, on_delete=models.PROTECT, related_name="shell_grant")
    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=16, choices=GrantScope.choices)
    region = models.CharField(max_length=32)
    cluster = models.CharField(max_length=255)
    service = models.CharField(max_length=255, blank=True)
    task_arn = models.CharField(max_length=2048, blank=True)
    container = models.CharField(max_length=255, blank=True)
    granted_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    first_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-granted_at", "-id"]
        indexes = [models.Index(fields=["user", "account", "expires_at"])]

    def __str__(self) -> str:
        return f"shell grant #{self.pk} for {self.user} on {self.target_label} until {self.expires_at:%H:%M}"

    @property
    def is_active(self) -> bool:
        return self.expires_at > timezone.now()

    @property
    def target_label(self) -> str:
        if self.scope == GrantScope.SERVICE:
            return f"service {self.service} in {self.cluster} ({self.region})"
        return (
            f"container {self.container} of task {self.task_arn.rsplit('/', 1)[-1]} in {self.cluster} ({self.region})"
        )
