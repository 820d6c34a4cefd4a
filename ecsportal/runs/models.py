"""Command runs and their transcripts.

A run's status only moves forward (queued → connecting → running → an end state), each move a
conditional UPDATE, so a watchdog, a cancel and the runner's own end cannot overwrite each
other. The transcript is a list of ordered chunks, each one batch of output written in one
INSERT; the chunk's `seq` is what live viewers use to join the stored transcript to the live
stream without a gap or a duplicate.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from ecsportal.accounts.models import AwsAccount

# An account's shell command "auto" (the default), as the container runs it: bash when the image
# has it, else sh. Pages name it "bash, else sh" (Run.command_label).
AUTO_SHELL = "/bin/sh -c 'if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi'"


class RunStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    QUEUED = "queued", "Queued"
    CONNECTING = "connecting", "Connecting"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    # Raw mode: the session ended normally but nothing reported the exit code, so the outcome is
    # unknown: neither a success nor a failure, and never shown as either.
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"  # the command ran and exited non-zero
    ERROR = "error", "Error"  # the portal, AWS or the channel failed; see end_reason
    TIMED_OUT = "timed_out", "Timed out"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.CONNECTING, RunStatus.RUNNING)
END_STATUSES = (
    RunStatus.SUCCEEDED,
    RunStatus.COMPLETED,
    RunStatus.FAILED,
    RunStatus.ERROR,
    RunStatus.TIMED_OUT,
    RunStatus.CANCELLED,
)


class RunMode(models.TextChoices):
    SHELL = "shell", "Shell (exit code recorded)"
    RAW = "raw", "Raw (no shell; exit code unknown)"


class Run(models.Model):
    account = models.ForeignKey(AwsAccount, on_delete=models.PROTECT, related_name="runs")
    region = models.CharField(max_length=32)
    cluster = models.CharField(max_length=2048)  # name or ARN, as picked
    task_arn = models.CharField(max_length=2048)
    container = models.CharField(max_length=255)
    # The command as shown and stored: secret runbook values masked. The command actually sent
    # differs only when it holds secrets; then it is kept encrypted until the run ends.
    command = models.TextField()
    command_sealed = models.TextField(blank=True, editable=False)  # Fernet ciphertext, wiped at the end
    command_sha256 = models.CharField(max_length=64)  # of the real command + task ARN + container (approval binding)
    mode = models.CharField(max_length=8, choices=RunMode.choices, default=RunMode.SHELL)
    role_arn = models.CharField(max_length=2048, blank=True)  # the override picked, "" for the account's own
    runbook_name = models.CharField(max_length=200, blank=True)  # set when the run came from a runbook
    # Set when the run is one target of a batch (`ecsportal.batches`); its end wakes the batch.
    batch = models.ForeignKey("batches.Batch", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="runs")
    approval = models.OneToOneField(
        "approvals.ApprovalRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="run"
    )
    reason = models.TextField(blank=True)  # why, when an approval is asked for
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    exit_code = models.IntegerField(null=True, blank=True)
    end_reason = models.TextField(blank=True)  # in words: "exited with 3", "task stopped: …", "channel lost: …"
    bytes_out = models.BigIntegerField(default=0)
    cols = models.PositiveSmallIntegerField(default=120)
    rows = models.PositiveSmallIntegerField(default=32)
    time_limit_seconds = models.PositiveIntegerField(default=900)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The runner that owns the session writes this every few seconds; a run whose heartbeat is
    # stale is ended as "runner lost" (scale-out).
    runner_id = models.CharField(max_length=100, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Interactive shells (runs/interactive.py): the terminal takes input from whoever holds the
    # keyboard (the owner, `requested_by`, or a participant the owner handed it to).
    interactive = models.BooleanField(default=False)
    keyboard_holder = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    moderated = models.BooleanField(default=False)  # input only while an approver other than the owner watches
    record_input = models.BooleanField(default=False)  # typed bytes kept in the recording (account policy)
    # A shell's terms, fixed when it opens: the service its task belongs to (a grant may be for
    # the service's tasks), the idle limit, and when the access grant that allowed it ends.
    shell_service = models.CharField(max_length=255, blank=True)
    shell_idle_seconds = models.PositiveIntegerField(default=0)  # 0: ECSPORTAL_SHELL_IDLE_SECONDS
    access_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-created_at"]),
            models.Index(fields=["requested_by", "-created_at"]),
            # The history's filter menus skip through these (runs.selectors._distinct_run_values),
            # and its cluster filter looks the exact values up.
            models.Index(fields=["account", "cluster"], name="run_account_cluster_idx"),
            models.Index(fields=["account", "requested_by"], name="run_account_user_idx"),
            # Counting one status's runs (capped) from the index alone.
            models.Index(fields=["status", "account"], name="run_status_account_idx"),
        ]

    def __str__(self) -> str:
        return f"run #{self.pk} {self.container} ({self.status})"

    @property
    def command_label(self) -> str:
        """The command as pages show it ("bash, else sh" for the automatic shell)."""
        return "bash, else sh (automatic)" if self.interactive and self.command == AUTO_SHELL else self.command

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_finished(self) -> bool:
        return self.status in END_STATUSES

    @property
    def task_id(self) -> str:
        return self.task_arn.rsplit("/", 1)[-1]

    @property
    def cluster_name(self) -> str:
        return self.cluster.rsplit("/", 1)[-1]

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        from django.utils import timezone

        return ((self.ended_at or timezone.now()) - self.started_at).total_seconds()


class RunChunk(models.Model):
    """One batch of terminal output, exactly as the container sent it (bytes, escapes kept)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveIntegerField()  # 1, 2, 3 … per run, no gaps
    offset = models.FloatField()  # seconds since the run started (asciicast timing)
    data = models.BinaryField()

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="one_chunk_per_seq")]

    def __str__(self) -> str:
        return f"run #{self.run_id} chunk {self.seq} ({len(self.data)} bytes)"


class SessionSeat(models.Model):
    """One open socket of a person in an interactive session: who is in it, live, across processes.

    A seat is a lease: the process holding the socket renews `seen_at` every third of
    `ECSPORTAL_SHELL_SEAT_LEASE_SECONDS`; a seat not renewed within the lease (its process was
    killed) counts for nobody, and any live process sweeps it."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="seats")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    channel_name = models.CharField(max_length=200, unique=True)
    joined_at = models.DateTimeField(auto_now_add=True)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["joined_at", "id"]

    def __str__(self) -> str:
        return f"run #{self.run_id} seat of user {self.user_id}"


class SessionEventKind(models.TextChoices):
    RESIZE = "r", "Resize"  # data "COLSxROWS"
    MARKER = "m", "Marker"  # data: who started typing
    INPUT = "i", "Input"  # data: the bytes typed (only where the account's policy records input)


class SessionEvent(models.Model):
    """What an interactive session's recording holds besides its output (asciicast "r", "m", "i")."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="session_events")
    offset = models.FloatField()  # seconds since the run started, as RunChunk.offset
    kind = models.CharField(max_length=1, choices=SessionEventKind.choices)
    data = models.TextField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["run", "offset", "id"]
        indexes = [models.Index(fields=["run", "offset"], name="session_event_run_idx")]

    def __str__(self) -> str:
        return f"run #{self.run_id} {self.kind} at {self.offset:.3f}"
