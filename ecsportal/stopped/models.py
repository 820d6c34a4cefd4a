"""Stopped-task history (one row per task ARN and account) and the collector's per-cluster state."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ecsportal.accounts.models import AwsAccount
from ecsportal.stopped import categories


class StoppedTask(models.Model):
    """One stopped task as ECS last described it, kept long after ECS forgets it (about an hour)."""

    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="stopped_tasks")
    region = models.CharField(max_length=32)
    cluster = models.CharField(max_length=255)
    task_arn = models.CharField(max_length=512)
    service = models.CharField(max_length=255, blank=True)  # from group "service:<name>"
    group = models.CharField(max_length=255, blank=True)
    started_by = models.CharField(max_length=255, blank=True)
    task_definition_arn = models.CharField(max_length=512, blank=True)
    family = models.CharField(max_length=255, blank=True)
    revision = models.PositiveIntegerField(null=True, blank=True)
    launch_type = models.CharField(max_length=32, blank=True)
    capacity_provider = models.CharField(max_length=255, blank=True)
    platform_version = models.CharField(max_length=32, blank=True)
    availability_zone = models.CharField(max_length=32, blank=True)
    last_status = models.CharField(max_length=32, blank=True)
    desired_status = models.CharField(max_length=32, blank=True)
    stop_code = models.CharField(max_length=64, blank=True)
    stopped_reason = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopping_at = models.DateTimeField(null=True, blank=True)
    # ECS's stoppedAt, or stoppingAt / first seen while a task is still stopping: never null, so
    # that every list sorts and filters on one indexed column.
    stopped_at = models.DateTimeField()
    stopped_at_reported = models.BooleanField(default=True)
    stopped_hour = models.IntegerField()  # hours since the epoch: the chart groups on an integer
    execution_stopped_at = models.DateTimeField(null=True, blank=True)
    # [{name, image, image_digest, exit_code, reason, last_status, runtime_id}]
    containers = models.JSONField(default=list)
    category = models.CharField(max_length=48, default="unknown")
    signature = models.CharField(max_length=40)
    signature_container = models.CharField(max_length=255, blank=True)
    signature_text = models.CharField(max_length=categories.SIGNATURE_TEXT_MAX, blank=True)
    # Lower-cased task ID, service, family, reasons, container names and images: one LIKE for free text.
    search_text = models.TextField(blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-stopped_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["account", "task_arn"], name="one_row_per_stopped_task")]
        indexes = [
            models.Index(fields=["-stopped_at", "-id"], name="stopped_recent"),
            # Covers the on-call view's aggregates (signatures with their services and sample row,
            # the chart) and the home page's failures: every column they read is here, `id`
            # included, so PostgreSQL answers them with an index-only scan.
            models.Index(
                fields=["account", "-stopped_at", "category", "signature", "stopped_hour", "service", "id"],
                name="stopped_account_covering",
            ),
            models.Index(fields=["category", "-stopped_at"], name="stopped_category_recent"),
            models.Index(fields=["cluster", "-stopped_at"], name="stopped_cluster_recent"),
            models.Index(fields=["cluster", "category", "-stopped_at"], name="stopped_cluster_cat_recent"),
            models.Index(fields=["service", "-stopped_at"], name="stopped_service_recent"),
            models.Index(fields=["stop_code", "-stopped_at"], name="stopped_stopcode_recent"),
            models.Index(fields=["signature", "-stopped_at"], name="stopped_signature_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.cluster}/{self.task_id} ({self.category})"

    @property
    def task_id(self) -> str:
        return self.task_arn.rsplit("/", 1)[-1]

    @property
    def task_definition(self) -> str:
        return f"{self.family}:{self.revision}" if self.revision is not None else self.family

    @property
    def explanation(self) -> categories.Category:
        return categories.category(self.category)


class StoppedHour(models.Model):
    """Stopped tasks per account, hour, category, signature and service: the on-call page's
    signatures and chart over a wide window sum these (a week is ~7,000 of them at the
    benchmark's rate) instead of an index entry per task (~50,000).

    Kept exact by the database itself: triggers on `StoppedTask` (migration 0005, PostgreSQL and
    SQLite) count every insert, update and delete, whoever writes (the collector's upsert,
    retention, the demo, bulk inserts, `QuerySet.update`). `hour` is computed there from
    `stopped_at` (not read from `stopped_hour`), so an hour's sums are exactly the rows whose
    `stopped_at` falls in it. Never written from Python.
    """

    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="+")
    hour = models.IntegerField()  # hours since the epoch of stopped_at
    category = models.CharField(max_length=48)
    signature = models.CharField(max_length=40)
    service = models.CharField(max_length=255, blank=True)
    tasks = models.PositiveIntegerField()
    first_at = models.DateTimeField()  # the earliest stopped_at
    last_at = models.DateTimeField()  # the latest stopped_at
    sample = models.BigIntegerField()  # the greatest StoppedTask ID: the page's sample row

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "hour", "category", "signature", "service"], name="one_stopped_hour_per_group"
            )
        ]

    def __str__(self) -> str:
        return f"{self.account_id}/{self.hour}/{self.signature}/{self.service}: {self.tasks}"


class CollectionRun(models.Model):
    """One pass of the collector over some accounts; the page polls it while it runs."""

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Refresh now"
        PERIODIC = "periodic", "Periodic"
        COMMAND = "command", "manage.py collect_stopped_tasks"
        DEMO = "demo", "Demo seed"

    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    account_pks = models.JSONField(default=list)  # the scope; empty = every enabled account
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    clusters_total = models.PositiveIntegerField(default=0)
    clusters_done = models.PositiveIntegerField(default=0)
    clusters_failed = models.PositiveIntegerField(default=0)
    tasks_seen = models.PositiveIntegerField(default=0)
    tasks_new = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"collection {self.pk} ({self.trigger})"

    @property
    def is_finished(self) -> bool:
        return self.finished_at is not None


class ClusterCollection(models.Model):
    """What the collector last managed (or failed) to do for one cluster.

    `cluster == ""` is the region itself: listing its clusters failed (AccessDenied on
    ListClusters, a role that cannot be assumed), so none of its clusters could be collected.
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Collecting"
        OK = "ok", "Collected"
        ERROR = "error", "Failed"

    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="stopped_collections")
    region = models.CharField(max_length=32)
    cluster = models.CharField(max_length=255, blank=True)
    run = models.ForeignKey(CollectionRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="clusters")
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_ok_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_code = models.CharField(max_length=128, blank=True)
    last_error_kind = models.CharField(max_length=32, blank=True)
    tasks_seen = models.PositiveIntegerField(default=0)
    tasks_new = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["account__name", "region", "cluster"]
        constraints = [
            models.UniqueConstraint(fields=["account", "region", "cluster"], name="one_collection_per_cluster")
        ]

    def __str__(self) -> str:
        return f"{self.account_id}/{self.region}/{self.cluster or '*'}: {self.state}"
