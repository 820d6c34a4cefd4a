"""/metrics: the Prometheus text an operator scrapes, behind ECSPORTAL_METRICS_TOKEN."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from ecsportal.approvals.models import ApprovalRequest, Status
from ecsportal.runs.models import Run, RunStatus
from ecsportal.stopped.models import ClusterCollection, CollectionRun
from tests.runs.lab import stored_run

TOKEN = "metrics-token-0123456789abcdef"
SAMPLE = re.compile(r"^([a-z_]+)(?:\{(.*)\})? (-?[0-9.e+]+)$")
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of the exposition text; each metric must have HELP and TYPE before its samples."""
    described: set[str] = set()
    found: dict[tuple[str, frozenset], float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            described.add(line.split()[2])
        elif line.startswith("# TYPE "):
            assert line.split()[3] in {"gauge", "counter"}
        else:
            match = SAMPLE.match(line)
            assert match, f"not a sample line: {line!r}"
            name, labels, value = match.groups()
            assert name in described, f"{name} has no HELP line"
            key = (name, frozenset(LABEL.findall(labels or "")))
            assert key not in found, f"duplicate sample {key}"
            found[key] = float(value)
    return found


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def scrape(client, token: str | None = TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.get("/metrics", headers=headers)


def _run(cast, status: str, bytes_out: int = 0) -> Run:
    return stored_run(account=cast.staging, requested_by=cast.operator, status=status, bytes_out=bytes_out)


def _approval(cast, *, status: str = Status.PENDING, action: str = "ecs.stop_task", expires_in: int = 3600):
    return ApprovalRequest.objects.create(
        action=action,
        target_label="a task",
        account=cast.staging,
        requester=cast.operator,
        reason="why",
        status=status,
        expires_at=timezone.now() + timedelta(seconds=expires_in),
    )


@pytest.mark.django_db
def test_no_token_configured_means_there_is_no_such_page(client):
    with override_settings(ECSPORTAL_METRICS_TOKEN=""):
        assert scrape(client).status_code == 404
        assert scrape(client, token=None).status_code == 404


@pytest.mark.django_db
@override_settings(ECSPORTAL_METRICS_TOKEN=TOKEN)
def test_a_missing_or_wrong_token_is_refused_without_a_login_redirect(client, cast):
    missing = scrape(client, token=None)
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    for wrong in (TOKEN[:-1], TOKEN + "x", "", TOKEN.upper()):
        answer = scrape(client, token=wrong)
        assert answer.status_code in (401, 403), wrong
        assert "ecsportal_" not in answer.content.decode()
    basic = client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    # A logged-in admin's session is no substitute for the token.
    client.force_login(cast.admin)
    assert scrape(client, token=None).status_code == 401


@pytest.mark.django_db
@override_settings(ECSPORTAL_METRICS_TOKEN=TOKEN)
def test_the_numbers_are_the_databases(client, cast):
    for status, size in [
        (RunStatus.RUNNING, 1000),
        (RunStatus.RUNNING, 24),
        (RunStatus.QUEUED, 0),
        (RunStatus.AWAITING_APPROVAL, 0),
        (RunStatus.SUCCEEDED, 5000),
        (RunStatus.SUCCEEDED, 7),
        (RunStatus.SUCCEEDED, 0),
        (RunStatus.FAILED, 300),
        (RunStatus.ERROR, 2),
        (RunStatus.CANCELLED, 0),
    ]:
        _run(cast, status, size)
    _approval(cast)
    _approval(cast)
    _approval(cast, action="ecs.execute_command")
    _approval(cast, expires_in=-60)  # expired: waits for nobody
    _approval(cast, status=Status.EXECUTING)
    _approval(cast, status=Status.EXECUTED)

    now = timezone.now()
    older = CollectionRun.objects.create(trigger=CollectionRun.Trigger.PERIODIC)
    CollectionRun.objects.filter(pk=older.pk).update(
        started_at=now - timedelta(hours=1), finished_at=now - timedelta(hours=1) + timedelta(seconds=99)
    )
    last = CollectionRun.objects.create(trigger=CollectionRun.Trigger.COMMAND, clusters_done=5, clusters_failed=2)
    CollectionRun.objects.filter(pk=last.pk).update(
        started_at=now - timedelta(seconds=42.5), finished_at=now, clusters_total=5
    )
    for cluster, state, kind in [
        ("a", ClusterCollection.State.ERROR, "access_denied"),
        ("b", ClusterCollection.State.ERROR, "access_denied"),
        ("c", ClusterCollection.State.ERROR, "throttled"),
        ("d", ClusterCollection.State.OK, ""),
    ]:
        ClusterCollection.objects.create(
            account=cast.prod, region="eu-west-1", cluster=cluster, state=state, last_error_kind=kind
        )

    answer = scrape(client)
    assert answer.status_code == 200
    assert answer["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert answer["Cache-Control"] == "no-store"
    samples = parse(answer.content.decode())

    assert value(samples, "ecsportal_runs_active", status="running") == 2
    assert value(samples, "ecsportal_runs_active", status="queued") == 1
    assert value(samples, "ecsportal_runs_active", status="connecting") == 0
    assert value(samples, "ecsportal_runs_awaiting_approval") == 1
    assert value(samples, "ecsportal_runs_finished_total", status="succeeded") == 3
    assert value(samples, "ecsportal_runs_finished_total", status="failed") == 1
    assert value(samples, "ecsportal_runs_finished_total", status="error") == 1
    assert value(samples, "ecsportal_runs_finished_total", status="cancelled") == 1
    assert value(samples, "ecsportal_runs_finished_total", status="timed_out") == 0
    assert value(samples, "ecsportal_run_output_bytes_total") == 1000 + 24 + 5000 + 7 + 300 + 2

    assert value(samples, "ecsportal_approvals_pending") == 3
    assert value(samples, "ecsportal_approvals_pending_by_action", action="ecs.stop_task") == 2
    assert value(samples, "ecsportal_approvals_pending_by_action", action="ecs.execute_command") == 1
    assert value(samples, "ecsportal_approvals_executing") == 1

    assert value(samples, "ecsportal_stopped_collection_last_duration_seconds") == pytest.approx(42.5)
    assert value(samples, "ecsportal_stopped_collection_last_finished_timestamp_seconds") == pytest.approx(
        now.timestamp()
    )
    assert value(samples, "ecsportal_stopped_collection_last_clusters", outcome="ok") == 3
    assert value(samples, "ecsportal_stopped_collection_last_clusters", outcome="failed") == 2
    assert value(samples, "ecsportal_stopped_collection_running") == 0
    assert value(samples, "ecsportal_stopped_collection_failing") == 3
    assert value(samples, "ecsportal_stopped_collection_failing_by_kind", kind="access_denied") == 2
    assert value(samples, "ecsportal_stopped_collection_failing_by_kind", kind="throttled") == 1


@pytest.mark.django_db
@override_settings(ECSPORTAL_METRICS_TOKEN=TOKEN)
def test_an_empty_portal_scrapes_cleanly_with_zeroes(client):
    samples = parse(scrape(client).content.decode())
    assert value(samples, "ecsportal_runs_active", status="running") == 0
    assert value(samples, "ecsportal_run_output_bytes_total") == 0
    assert value(samples, "ecsportal_approvals_pending") == 0
    assert value(samples, "ecsportal_stopped_collection_failing") == 0
    # Before the first collection there is no duration to report, rather than a made-up 0.
    assert not any(name == "ecsportal_stopped_collection_last_duration_seconds" for name, _ in samples)


@pytest.mark.django_db
@override_settings(ECSPORTAL_METRICS_TOKEN=TOKEN)
def test_a_running_collection_shows(client):
    CollectionRun.objects.create(trigger=CollectionRun.Trigger.MANUAL)
    samples = parse(scrape(client).content.decode())
    assert value(samples, "ecsportal_stopped_collection_running") == 1


def test_label_values_are_escaped():
    from ecsportal.metrics import Metric, render

    text = render([Metric("x_total", "counter", "help").add(1, kind='a"b\\c\nd')])
    assert text.splitlines()[-1] == 'x_total{kind="a\\"b\\\\c\\nd"} 1'
