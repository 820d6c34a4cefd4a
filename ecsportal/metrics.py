"""`/metrics`: the portal's numbers in the Prometheus text format, for an operator's scraper.

Read from the database on each scrape, so every process answers the same whatever it ran
itself: runs by status, output bytes relayed, the stopped-task collector's last pass and its
failing clusters, approvals waiting. These are whole-portal figures, not one user's view: no
account filter applies, and the view lets only a holder of ECSPORTAL_METRICS_TOKEN read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.db.models import Count, Sum
from django.utils import timezone

from ecsportal.approvals.models import ApprovalRequest, Status
from ecsportal.runs.models import ACTIVE_STATUSES, END_STATUSES, Run, RunStatus
from ecsportal.stopped.models import ClusterCollection, CollectionRun
from ecsportal.stopped.status import collection_run_active

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Metric:
    name: str
    kind: str  # gauge or counter
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> Metric:
        self.samples.append((labels, value))
        return self


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(metrics: Iterable[Metric]) -> str:
    """The exposition text: HELP and TYPE, then one line per sample."""
    lines: list[str] = []
    for metric in metrics:
        lines.append(f"# HELP {metric.name} {metric.help}")
        lines.append(f"# TYPE {metric.name} {metric.kind}")
        for labels, value in metric.samples:
            shown = ",".join(f'{key}="{_escape(str(text))}"' for key, text in sorted(labels.items()))
            lines.append(f"{metric.name}{{{shown}}} {_number(value)}" if shown else f"{metric.name} {_number(value)}")
    return "\n".join(lines) + "\n"


def _by(rows: Iterable[Mapping[str, object]], key: str) -> dict[str, int]:
    return {str(row[key]): int(row["n"]) for row in rows}  # type: ignore[call-overload]


def run_metrics() -> list[Metric]:
    counts = _by(Run.objects.values("status").annotate(n=Count("id")).order_by(), "status")
    active = Metric("ecsportal_runs_active", "gauge", "Runs not yet ended, by status.")
    for status in ACTIVE_STATUSES:
        active.add(counts.get(status, 0), status=status)
    waiting = Metric("ecsportal_runs_awaiting_approval", "gauge", "Runs waiting for their approval request.")
    waiting.add(counts.get(RunStatus.AWAITING_APPROVAL, 0))
    finished = Metric("ecsportal_runs_finished_total", "counter", "Runs ended, by status (as stored).")
    for status in END_STATUSES:
        finished.add(counts.get(status, 0), status=status)
    relayed = Run.objects.aggregate(total=Sum("bytes_out"))["total"] or 0
    relay = Metric(
        "ecsportal_run_output_bytes_total", "counter", "Bytes of container output relayed by runs (sum of bytes_out)."
    ).add(relayed)
    return [active, waiting, finished, relay]


def collector_metrics() -> list[Metric]:
    last = CollectionRun.objects.filter(finished_at__isnull=False).order_by("-finished_at").first()
    duration = Metric(
        "ecsportal_stopped_collection_last_duration_seconds",
        "gauge",
        "Duration of the last finished stopped-task collection pass (absent before the first).",
    )
    finished_at = Metric(
        "ecsportal_stopped_collection_last_finished_timestamp_seconds",
        "gauge",
        "Unix time the last stopped-task collection pass finished (absent before the first).",
    )
    clusters = Metric(
        "ecsportal_stopped_collection_last_clusters",
        "gauge",
        "Clusters in the last finished collection pass, by outcome.",
    )
    if last is not None and last.finished_at is not None:
        duration.add((last.finished_at - last.started_at).total_seconds())
        finished_at.add(last.finished_at.timestamp())
        clusters.add(last.clusters_done - last.clusters_failed, outcome="ok")
        clusters.add(last.clusters_failed, outcome="failed")
    running = Metric(
        "ecsportal_stopped_collection_running", "gauge", "1 while a stopped-task collection pass is under way."
    ).add(1 if collection_run_active() is not None else 0)
    rows = (
        ClusterCollection.objects.filter(state=ClusterCollection.State.ERROR)
        .values("last_error_kind")
        .annotate(n=Count("id"))
        .order_by()
    )
    errors = _by(rows, "last_error_kind")
    failing = Metric(
        "ecsportal_stopped_collection_failing",
        "gauge",
        "Clusters (or regions, when listing their clusters failed) whose latest collection failed.",
    ).add(sum(errors.values()))
    by_kind = Metric(
        "ecsportal_stopped_collection_failing_by_kind",
        "gauge",
        "The same, by kind of error (access_denied, throttled, credentials, unreachable, not_found …).",
    )
    for kind, count in sorted(errors.items()):
        by_kind.add(count, kind=kind or "error")
    return [duration, finished_at, clusters, running, failing, by_kind]


def approval_metrics() -> list[Metric]:
    rows = (
        ApprovalRequest.objects.filter(status=Status.PENDING, expires_at__gt=timezone.now())
        .values("action")
        .annotate(n=Count("id"))
        .order_by()
    )
    pending = _by(rows, "action")
    total = Metric(
        "ecsportal_approvals_pending", "gauge", "Approval requests waiting for decisions (not expired)."
    ).add(sum(pending.values()))
    by_action = Metric("ecsportal_approvals_pending_by_action", "gauge", "The same, by action.")
    for action, count in sorted(pending.items()):
        by_action.add(count, action=action)
    executing = Metric("ecsportal_approvals_executing", "gauge", "Approved requests whose action is running now.").add(
        ApprovalRequest.objects.filter(status=Status.EXECUTING).count()
    )
    return [total, by_action, executing]


def portal_metrics() -> list[Metric]:
    return [*run_metrics(), *collector_metrics(), *approval_metrics()]
