"""run_request, run_cancel, the approval executor and the stale-run sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.http import Http404
from django.utils import timezone

from ecsportal.approvals import services as approvals
from ecsportal.approvals.models import ApprovalRequest, Status
from ecsportal.audit.models import AuditEvent
from ecsportal.runs import lifecycle, services
from ecsportal.runs.models import Run, RunChunk, RunStatus
from ecsportal.runs.selectors import run_transcript_bytes
from ecsportal.runs.services import RunRefused
from tests.runs.lab import RUNS_CLUSTER, RUNS_REGION, wait_ended


def _request(account, user, arn, **options):
    params = {
        "actor": user,
        "account_pk": account.pk,
        "region": RUNS_REGION,
        "cluster": RUNS_CLUSTER,
        "task": arn,
        "container": "app",
        "command": "echo hi",
    }
    return services.run_request(**{**params, **options})


@pytest.fixture
def queued(monkeypatch):
    """Runs are queued but not dispatched (these tests look at what the service wrote)."""
    from ecsportal.runs import dispatcher

    started: list[int] = []
    monkeypatch.setattr(dispatcher, "dispatch", started.append)
    return started


@pytest.mark.django_db(transaction=True)
def test_an_operator_queues_a_run_audited_with_the_shown_command(cast, runs_lab, lab_task, queued):
    run = _request(runs_lab, cast.operator, lab_task(), command="echo s3cret", shown_command="echo ******")
    assert run.status == RunStatus.QUEUED and queued == [run.pk]
    assert run.command == "echo ******" and run.command_sealed and "s3cret" not in run.command_sealed
    event = AuditEvent.objects.get(action="run.requested")
    assert event.details["command"] == "echo ******" and "s3cret" not in str(event.details)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("who", "change", "expected"),
    [
        ("viewer", {}, "operator role"),
        ("operator", {"role_arn": "arn:aws:iam::123456789012:role/not-allowed"}, "has not allowed this role"),
        ("operator", {"container": "nope"}, "no container named nope"),
        ("operator", {"task": "0123456789abcdef0123456789abcdef"}, "No task"),
        ("operator", {"command": "   "}, "Enter a command"),
        ("operator", {"region": "us-west-2"}, "not one of"),
    ],
)
def test_refusals_say_why(cast, runs_lab, lab_task, queued, who, change, expected):
    with pytest.raises(RunRefused, match=expected):
        _request(runs_lab, getattr(cast, who), lab_task(), **change)
    assert not Run.objects.exists() and queued == []


@pytest.mark.django_db(transaction=True)
def test_a_disabled_account_a_stopped_task_and_an_outsider_are_refused(cast, runs_lab, lab_task, runs_ecs, queued):
    arn = lab_task()
    runs_ecs.stop_task(cluster=RUNS_CLUSTER, task=arn, reason="gone")
    with pytest.raises(RunRefused, match="stopped"):
        _request(runs_lab, cast.operator, arn)
    with pytest.raises(Http404):
        _request(runs_lab, cast.outsider, lab_task())
    runs_lab.is_enabled = False
    runs_lab.save()
    with pytest.raises(RunRefused, match="disabled"):
        _request(runs_lab, cast.operator, lab_task())
    assert not Run.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_cancel_before_start_and_viewer_cannot_cancel(cast, runs_lab, lab_task, queued):
    run = _request(runs_lab, cast.operator, lab_task())
    with pytest.raises(Exception, match="operator role"):
        services.run_cancel(actor=cast.viewer, run_pk=run.pk)
    run = services.run_cancel(actor=cast.operator, run_pk=run.pk)
    assert run.status == RunStatus.CANCELLED and "before it started" in run.end_reason
    with pytest.raises(RunRefused, match="already ended"):
        services.run_cancel(actor=cast.operator, run_pk=run.pk)


@pytest.mark.django_db(transaction=True)
def test_a_run_needing_approval_waits_and_a_rejection_cancels_it(cast, runs_lab, lab_task, queued):
    runs_lab.approvals_for_commands = 1
    runs_lab.save()
    with pytest.raises(RunRefused, match="say why"):
        _request(runs_lab, cast.operator, lab_task())
    run = _request(runs_lab, cast.operator, lab_task(), reason="debugging")
    assert run.status == RunStatus.AWAITING_APPROVAL and queued == []
    request = ApprovalRequest.objects.get(pk=run.approval_id)
    assert request.action == "ecs.execute_command" and request.target["run"] == run.pk
    approvals.approval_decide(actor=cast.approver, request_pk=request.pk, decision="reject", comment="Not on a Friday.")
    run = Run.objects.get(pk=run.pk)  # ended by the approvals hook, not by being read
    assert run.status == RunStatus.CANCELLED
    assert run.end_reason == f"Rejected by {cast.approver.get_username()}: Not on a Friday."
    ended = AuditEvent.objects.get(action="run.ended", details__run=run.pk)
    assert ended.details["status"] == RunStatus.CANCELLED


@pytest.mark.django_db(transaction=True)
def test_an_approved_run_is_dispatched_and_a_changed_command_is_refused(cast, runs_lab, lab_task, queued):
    runs_lab.approvals_for_commands = 1
    runs_lab.save()
    run = _request(runs_lab, cast.operator, lab_task(), reason="why")
    request = approvals.approval_decide(actor=cast.approver, request_pk=run.approval_id, decision="approve")
    assert request.status == Status.EXECUTED and queued == [run.pk]
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED

    other = _request(runs_lab, cast.operator, lab_task(), reason="why")
    Run.objects.filter(pk=other.pk).update(command="rm -rf /")  # not what was approved
    request = approvals.approval_decide(actor=cast.approver, request_pk=other.approval_id, decision="approve")
    assert request.status == Status.FAILED and "differs from what was approved" in request.result
    assert Run.objects.get(pk=other.pk).status == RunStatus.CANCELLED
    assert queued == [run.pk]


@pytest.mark.django_db(transaction=True)
def test_the_sweep_ends_runs_whose_runner_was_lost(cast, runs_lab, lab_task, queued):
    old = timezone.now() - timedelta(minutes=5)
    lost = _request(runs_lab, cast.operator, lab_task())
    Run.objects.filter(pk=lost.pk).update(status=RunStatus.RUNNING, heartbeat_at=old, runner_id="dead")
    alive = _request(runs_lab, cast.operator, lab_task())
    Run.objects.filter(pk=alive.pk).update(status=RunStatus.RUNNING, heartbeat_at=timezone.now())
    never = _request(runs_lab, cast.operator, lab_task())
    Run.objects.filter(pk=never.pk).update(created_at=old)
    RunChunk.objects.create(run_id=lost.pk, seq=1, offset=0.1, data=b"stored ")
    RunChunk.objects.create(run_id=lost.pk, seq=2, offset=0.2, data=b"before the loss")
    assert lifecycle.runs_end_stale(stale_after=60) == 2
    assert Run.objects.get(pk=lost.pk).status == RunStatus.ERROR
    assert Run.objects.get(pk=lost.pk).bytes_out == len(b"stored before the loss")  # reconciled, not the stale count
    assert Run.objects.get(pk=lost.pk).end_reason.startswith("Runner lost")
    assert "no runner picked" in Run.objects.get(pk=never.pk).end_reason
    assert Run.objects.get(pk=alive.pk).status == RunStatus.RUNNING


@pytest.mark.django_db(transaction=True)
def test_the_sweep_never_ends_a_run_whose_heartbeat_came_in_after_it_looked(cast, runs_lab, lab_task, queued):
    # The sweep's end repeats the staleness test in its own conditional UPDATE: a heartbeat that
    # lands between the sweep's read and its end keeps the run alive.
    cutoff = timezone.now() - timedelta(seconds=60)
    run = _request(runs_lab, cast.operator, lab_task())
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, heartbeat_at=timezone.now())
    assert not lifecycle.run_end(run_pk=run.pk, status=RunStatus.ERROR, end_reason="Runner lost", stale_before=cutoff)
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING
    Run.objects.filter(pk=run.pk).update(heartbeat_at=cutoff - timedelta(seconds=1))
    assert lifecycle.run_end(run_pk=run.pk, status=RunStatus.ERROR, end_reason="Runner lost", stale_before=cutoff)


@pytest.mark.django_db(transaction=True)
def test_a_run_approved_long_after_its_request_is_not_swept_before_a_runner_takes_it(cast, runs_lab, lab_task, queued):
    runs_lab.approvals_for_commands = 1
    runs_lab.save()
    run = _request(runs_lab, cast.operator, lab_task(), reason="why")
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=2))  # approved two hours later
    approvals.approval_decide(actor=cast.approver, request_pk=run.approval_id, decision="approve")
    assert queued == [run.pk]
    assert lifecycle.runs_end_stale(stale_after=60) == 0  # the wait counts from the approval
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=2))
    assert lifecycle.runs_end_stale(stale_after=60) == 1  # still nobody took it a while later
    assert "no runner picked" in Run.objects.get(pk=run.pk).end_reason


@pytest.mark.django_db(transaction=True)
def test_in_worker_mode_a_run_the_queue_refuses_ends_at_once_saying_why(cast, runs_lab, lab_task, fast_runs):
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from ecsportal.runs.dispatcher import RUNS_CHANNEL

    fast_runs.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1}}
    }
    fast_runs.ECSPORTAL_RUNNER_MODE = "worker"
    async_to_sync(get_channel_layer().send)(RUNS_CHANNEL, {"type": "run.execute", "run_pk": 0})  # nobody consumes

    run = _request(runs_lab, cast.operator, lab_task())  # no exception reaches the view

    run.refresh_from_db()
    assert run.status == RunStatus.ERROR
    assert "runs queue did not take it (ChannelFull" in run.end_reason and "runworker ecsportal-runs" in run.end_reason


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_sealed_command_runs_for_real_and_is_wiped_at_the_end(cast, run_as):
    run = await run_as(cast.operator, "echo s3cret-value", shown_command="echo ******")
    run = await wait_ended(run.pk)
    assert run.status == RunStatus.SUCCEEDED and run.command_sealed == ""
    assert b"s3cret-value" in await sync_to_async(run_transcript_bytes)(run=run)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_worker_mode_runs_through_runworker(cast, run_as, fast_runs):
    """`manage.py runworker ecsportal-runs` in miniature: channels' Worker on the ASGI app's "channel" route."""
    import asyncio

    from channels.layers import get_channel_layer
    from channels.worker import Worker

    from ecsportal.asgi import application
    from ecsportal.runs.dispatcher import RUNS_CHANNEL

    fast_runs.ECSPORTAL_RUNNER_MODE = "worker"
    worker = Worker(application=application, channels=[RUNS_CHANNEL], channel_layer=get_channel_layer())
    serving = asyncio.create_task(worker.handle())
    try:
        run = await run_as(cast.operator, "echo from-the-worker; exit 4")
        run = await wait_ended(run.pk)
    finally:
        serving.cancel()
    assert (run.status, run.exit_code) == (RunStatus.FAILED, 4)


def test_the_migration_turns_raw_mode_successes_into_completed_and_nothing_else(cast, runs_lab):
    import importlib

    from django.apps import apps

    from tests.runs.lab import stored_run

    migration = importlib.import_module("ecsportal.runs.migrations.0003_run_status_completed")
    raw = stored_run(account=runs_lab, requested_by=cast.operator, mode="raw", status="succeeded", exit_code=None)
    shell = stored_run(account=runs_lab, requested_by=cast.operator, mode="shell", status="succeeded", exit_code=0)
    failed = stored_run(account=runs_lab, requested_by=cast.operator, mode="raw", status="error", exit_code=None)
    migration.raw_successes_to_completed(apps, None)
    statuses = dict(Run.objects.values_list("pk", "status"))
    assert statuses == {raw.pk: "completed", shell.pk: "succeeded", failed.pk: "error"}


@pytest.fixture
def approvals_published(monkeypatch):
    """The channel-layer groups each approval change was announced to (the live pages and inboxes)."""
    from ecsportal.approvals import notify

    groups: list[str] = []
    monkeypatch.setattr(notify, "publish", lambda to, pk: groups.extend(to))
    return groups


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_run_that_waits_for_approval_withdraws_it_through_the_gate(
    cast, runs_lab, lab_task, queued, approvals_published
):
    runs_lab.approvals_for_commands = 1
    runs_lab.save()
    run = _request(runs_lab, cast.operator, lab_task(), reason="debugging")
    approvals_published.clear()

    run = services.run_cancel(actor=cast.operator, run_pk=run.pk, source_ip="203.0.113.9")

    request = ApprovalRequest.objects.get(pk=run.approval_id)
    assert request.status == Status.CANCELLED
    event = AuditEvent.objects.get(action="approval.cancel")
    assert (event.actor, event.details["request"], event.source_ip) == (cast.operator, request.pk, "203.0.113.9")
    assert f"approvers-{runs_lab.pk}" in approvals_published  # the approvers' inboxes drop it live
    assert run.status == RunStatus.CANCELLED and f"approval request #{request.pk} withdrawn" in run.end_reason


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("who", ["approver", "admin"])
def test_only_the_requester_may_withdraw_a_run_that_waits_for_approval(cast, runs_lab, lab_task, queued, who):
    runs_lab.approvals_for_commands = 1
    runs_lab.save()
    run = _request(runs_lab, cast.operator, lab_task(), reason="debugging")

    with pytest.raises(RunRefused, match="Only operator, who asked for this run, can withdraw it"):
        services.run_cancel(actor=getattr(cast, who), run_pk=run.pk)

    assert ApprovalRequest.objects.get(pk=run.approval_id).status == Status.PENDING
    assert Run.objects.get(pk=run.pk).status == RunStatus.AWAITING_APPROVAL
    assert not AuditEvent.objects.filter(action__in=("approval.cancel", "run.cancel")).exists()


@pytest.mark.django_db(transaction=True)
def test_any_operator_may_cancel_a_queued_run(cast, runs_lab, lab_task, queued):
    run = _request(runs_lab, cast.operator, lab_task())
    run = services.run_cancel(actor=cast.approver, run_pk=run.pk)
    assert run.status == RunStatus.CANCELLED and run.cancelled_by == cast.approver


@pytest.mark.django_db(transaction=True)
def test_a_refusal_is_a_validation_error_that_reads_as_its_message(cast, runs_lab, lab_task, queued):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        _request(runs_lab, cast.operator, lab_task(), container="nope")
    assert isinstance(refused.value, RunRefused)
    assert str(refused.value).startswith("Task ") and "no container named nope" in str(refused.value)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("close", "expected"),
    [
        ("withdraw", "Not run: its approval request was withdrawn."),
        ("expire", "Not run: its approval request expired before it was approved."),
    ],
)
def test_a_run_whose_approval_closes_ends_at_once_saying_why(cast, runs_lab, lab_task, queued, close, expected):
    runs_lab.approvals_for_commands = 1
    runs_lab.save()
    run = _request(runs_lab, cast.operator, lab_task(), reason="why")
    if close == "withdraw":
        approvals.approval_cancel(actor=cast.operator, request_pk=run.approval_id)
    else:
        ApprovalRequest.objects.filter(pk=run.approval_id).update(expires_at=timezone.now() - timedelta(seconds=1))
        assert approvals.approvals_expire_due() == 1
    run = Run.objects.get(pk=run.pk)
    assert (run.status, run.end_reason) == (RunStatus.CANCELLED, expected)
    assert queued == []


@pytest.mark.django_db(transaction=True)
def test_reading_a_run_never_writes_it(cast, runs_lab, lab_task, queued):
    runs_lab.approvals_for_commands = 1
    runs_lab.save()
    run = _request(runs_lab, cast.operator, lab_task(), reason="why")
    ApprovalRequest.objects.filter(pk=run.approval_id).update(status=Status.REJECTED)  # no hook ran
    from ecsportal.runs.selectors import run_get_for_user

    assert run_get_for_user(user=cast.viewer, run_pk=run.pk).status == RunStatus.AWAITING_APPROVAL
    assert Run.objects.get(pk=run.pk).status == RunStatus.AWAITING_APPROVAL
    assert lifecycle.runs_end_stale(stale_after=60) == 1  # the sweep is the safety net for a missed hook
    assert Run.objects.get(pk=run.pk).end_reason.startswith("Rejected")
