"""Batches: one command or runbook on many containers.

A `Batch` holds the command (as shown; the real one sealed while it holds runbook secrets), the
options, and the hashes its approval binds: `command_sha256` (the real command and mode) and
`targets_sha256` (the exact target list). Its `BatchTarget` rows are that list, in order, plus
the containers the filter matched that could not be reached (skipped, with why). Each target
that starts becomes an ordinary `runs.Run` (`Run.batch`, `BatchTarget.run`).

The scheduler's state is these rows: which targets are pending, which runs are active. A
process that dies loses nothing; the sweep resumes the batch (see `scheduler.py`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ecsportal.accounts.models import AwsAccount
from ecsportal.runs.models import RunStatus


class BatchStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"  # every target ran (or was not started, and the page says why)
    CANCELLED = "cancelled", "Cancelled"  # by a person, or its approval closed without running it
    REFUSED = "refused", "Refused"  # approved, but the command or targets differed from what was approved


BATCH_END_STATUSES = (BatchStatus.FINISHED, BatchStatus.CANCELLED, BatchStatus.REFUSED)
# A target's run that ended in one of these counts as a failure (stop-after-failures, re-run the
# failed). Raw mode's COMPLETED is neutral, a cancel is a person's choice: neither counts.
FAILED_STATUSES = (RunStatus.FAILED, RunStatus.ERROR, RunStatus.TIMED_OUT)


class TargetState(models.TextChoices):
    PENDING = "pending", "Pending"  # not started yet
    STARTING = "starting", "Starting"  # claimed by the scheduler (counts against the concurrency)
    STARTED = "started", "Started"  # has a run; the run's status says the rest
    SKIPPED = "skipped", "Skipped"  # matched, not started: not exec-ready, refused at start, stopped, cancelled


class Batch(models.Model):
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="batches")
    command = models.TextField()  # as shown: runbook secrets masked
    command_sealed = models.TextField(blank=True, editable=False)  # the real one, Fernet, wiped at the end
    command_has_secrets = models.BooleanField(default=False)  # a runbook's secret values: no re-run from here
    command_sha256 = models.CharField(max_length=64)  # of the real command and the mode
    targets_sha256 = models.CharField(
        max_length=64
    )  # of the ordered target list (account, region, cluster, task, container)
    mode = models.CharField(max_length=8, default="shell")  # runs.RunMode
    runbook_name = models.CharField(max_length=200, blank=True)
    spec = models.JSONField(default=dict)  # the filter, as typed (for "re-run", the page and the audit)
    concurrency = models.PositiveSmallIntegerField(default=5)
    time_limit_seconds = models.PositiveIntegerField(default=900)
    stop_after_failures = models.PositiveIntegerField(default=0)  # 0: never stop starting new targets
    reason = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=BatchStatus.choices, default=BatchStatus.RUNNING, db_index=True)
    end_reason = models.TextField(blank=True)
    approval = models.OneToOneField(
        "approvals.ApprovalRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="batch"
    )
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    advanced_at = models.DateTimeField(null=True, blank=True)  # the scheduler's last pass (its lock, too)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"], name="batch_status_idx")]

    def __str__(self) -> str:
        return f"batch #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in BATCH_END_STATUSES


class BatchTarget(models.Model):
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="targets")
    position = models.PositiveIntegerField()  # order of start; skipped-at-preview rows come after
    account = models.ForeignKey(AwsAccount, on_delete=models.PROTECT, related_name="+")
    region = models.CharField(max_length=32)
    cluster = models.CharField(max_length=255)
    service = models.CharField(max_length=255, blank=True)
    task_arn = models.CharField(max_length=2048)
    container = models.CharField(max_length=255)
    state = models.CharField(max_length=10, choices=TargetState.choices, default=TargetState.PENDING)
    claimed_at = models.DateTimeField(null=True, blank=True)  # when the scheduler took it (STARTING)
    skip_reason = models.TextField(blank=True)
    in_target_list = models.BooleanField(default=True)  # False: skipped at the preview (not part of the hash)
    run = models.OneToOneField(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="batch_target"
    )
    output_sha256 = models.CharField(max_length=64, blank=True)  # of the stored transcript, at the run's end

    class Meta:
        ordering = ["batch", "position"]
        constraints = [models.UniqueConstraint(fields=["batch", "position"], name="one_target_per_position")]
        indexes = [models.Index(fields=["batch", "state"], name="batch_target_state_idx")]

    def __str__(self) -> str:
        return f"{self.label} ({self.state})"

    @property
    def task_id(self) -> str:
        return self.task_arn.rsplit("/", 1)[-1]

    @property
    def label(self) -> str:
        """How the target is named in the combined transcript and the summary."""
        return f"{self.account.name}/{self.cluster}/{self.task_id}/{self.container}"
