"""Approval requests and the decisions on them.

A request's status only ever moves forward, and every move is a conditional UPDATE
(`filter(status=...).update(...)`), so two people clicking at once cannot both move it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from ecsportal.accounts.models import AwsAccount


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    EXECUTING = "executing", "Executing"
    EXECUTED = "executed", "Executed"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"


class ApprovalRequest(models.Model):
    action = models.CharField(max_length=64)  # registry key, e.g. "ecs.stop_task"
    target = models.JSONField(default=dict)  # what the executor needs, e.g. region, cluster, task ARN
    target_label = models.CharField(max_length=512)  # the target in words, for pages and the audit trail
    account = models.ForeignKey(AwsAccount, on_delete=models.PROTECT, related_name="approval_requests")
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    approvals_required = models.PositiveSmallIntegerField(default=1)
    expires_at = models.DateTimeField()
    break_glass = models.BooleanField(default=False)
    break_glass_reason = models.TextField(blank=True)
    result = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    executed_at = models.DateTimeField(null=True, blank=True)
    # When the request was claimed for execution; a claim much older than any action takes
    # means the process running it died, and `approval_fail_abandoned` says so.
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "status"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.target_label} ({self.status})"

    @property
    def is_expired(self) -> bool:
        """Pending past its deadline: nothing can approve or run it any more."""
        return self.status == Status.EXPIRED or (self.status == Status.PENDING and self.expires_at <= timezone.now())

    @property
    def shown_status(self) -> str:
        return Status.EXPIRED.value if self.is_expired else self.status

    @property
    def is_open(self) -> bool:
        return self.status == Status.PENDING and not self.is_expired


class Decision(models.TextChoices):
    APPROVE = "approve", "Approved"
    REJECT = "reject", "Rejected"


class ApprovalDecision(models.Model):
    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="decisions")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        # Each approver counts once, enforced by the database, not by a check in Python.
        constraints = [models.UniqueConstraint(fields=["request", "approver"], name="one_decision_per_approver")]

    def __str__(self) -> str:
        return f"{self.approver} {self.decision} #{self.request_id}"


class BreakGlassAck(models.Model):
    """An approver has seen a break-glass action; it leaves their inbox count."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="acks")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["request", "user"], name="one_ack_per_user")]

    def __str__(self) -> str:
        return f"{self.user} saw #{self.request_id}"
