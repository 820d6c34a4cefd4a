"""Batches end to end: moto as ECS, the SSM agent emulator as the data channel, real runs.

Each test has a cluster of its own (`batch_lab`); the scheduler runs on its own thread and is
woken by the runs' end path, as in the portal."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.core.exceptions import PermissionDenied
from django.http import Http404

from ecsportal.accounts.models import Role
from ecsportal.approvals.models import ApprovalRequest
from ecsportal.approvals.services import approval_decide
from ecsportal.batches import scheduler, selectors, services
from ecsportal.batches.models import Batch, BatchStatus, BatchTarget, TargetState
from ecsportal.batches.services import BatchOptions, BatchRefused
from ecsportal.runs import dispatcher
from ecsportal.runs.models import Run, RunStatus
from tests.batches.conftest import spec_for, wait_batch_ended

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest_asyncio.fixture(autouse=True)
async def _bind_loop():
    """In-process runs execute on the test's event loop (as on daphne's)."""
    dispatcher.bind_loop(asyncio.get_running_loop())


def _targets(batch_pk: int) -> list[BatchTarget]:
    return list(BatchTarget.objects.filter(batch_id=batch_pk).select_related("run", "account").order_by("position"))


async def _start(lab, command: str, *, user=None, options: BatchOptions | None = None, **spec_fields) -> Batch:
    return await sync_to_async(services.batch_start)(
        user=user or lab.cast.operator,
        spec=spec_for(lab, **spec_fields),
        command=command,
        options=options or BatchOptions(),
    )


async def test_the_preview_lists_ready_targets_and_says_why_others_are_skipped(batch_lab):
    lab = batch_lab
    ready = [await sync_to_async(lab.task)() for _ in range(3)]
    no_exec = await sync_to_async(lab.task)(exec_enabled=False)
    no_agent = await sync_to_async(lab.task)(agent="STOPPED")
    two = await sync_to_async(lab.task)(sidecar=True)
    await sync_to_async(lab.task)(family="batch-other", service="")  # another family, not in the service
    preview = await sync_to_async(services.batch_preview)(user=lab.cast.operator, spec=spec_for(lab, service="web"))
    assert sorted(t.task.arn for t in preview.targets) == sorted(ready)
    assert all(t.container == "app" for t in preview.targets)
    why = {t.task.arn: t.reason for t in preview.skipped}
    assert set(why) == {no_exec, no_agent, two}
    assert "ECS Exec was not enabled" in why[no_exec]
    assert "ExecuteCommandAgent in app is stopped" in why[no_agent]
    assert "name the container" in why[two]
    # Naming the container takes the two-container task in; a family filter narrows to it.
    named = await sync_to_async(services.batch_preview)(
        user=lab.cast.operator, spec=spec_for(lab, service="web", container="sidecar")
    )
    assert [t.task.arn for t in named.targets] == [two]
    other = await sync_to_async(services.batch_preview)(
        user=lab.cast.operator, spec=spec_for(lab, family="batch-other")
    )
    assert len(other.targets) == 1 and other.targets[0].service == ""


async def test_what_runs_is_what_the_preview_showed_and_a_changed_list_is_refused(batch_lab):
    lab = batch_lab
    for _ in range(4):
        await sync_to_async(lab.task)()
    await sync_to_async(lab.task)(exec_enabled=False)
    preview = await sync_to_async(services.batch_preview)(user=lab.cast.operator, spec=spec_for(lab))
    shown = [(t.task.arn, t.container) for t in preview.targets]
    # A task that starts after the preview changes the list: starting with the old hash is refused.
    await sync_to_async(lab.task)()
    with pytest.raises(BatchRefused, match="changed since the preview"):
        await _start(lab, "echo hi", expect_targets_sha256=preview.targets_sha256)
    assert await database_sync_to_async(Batch.objects.count)() == 0
    preview = await sync_to_async(services.batch_preview)(user=lab.cast.operator, spec=spec_for(lab))
    shown = [(t.task.arn, t.container) for t in preview.targets]
    batch = await _start(lab, "echo hi", expect_targets_sha256=preview.targets_sha256)
    batch = await wait_batch_ended(batch.pk)
    assert batch.status == BatchStatus.FINISHED
    targets = await database_sync_to_async(_targets)(batch.pk)
    ran = [(t.run.task_arn, t.run.container) for t in targets if t.run_id]
    assert ran == shown
    assert all(t.run.status == RunStatus.SUCCEEDED and t.run.batch_id == batch.pk for t in targets if t.run_id)
    skipped = [t for t in targets if not t.in_target_list]
    assert len(skipped) == 1 and "ECS Exec was not enabled" in skipped[0].skip_reason


def _max_overlap(runs: list[Run]) -> int:
    """The most runs active at once, from when each was created (queued by the scheduler) to its end."""
    events = sorted([(r.created_at, 1) for r in runs] + [(r.ended_at, -1) for r in runs], key=lambda e: (e[0], e[1]))
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


async def test_the_concurrency_is_never_exceeded(batch_lab):
    lab = batch_lab
    for _ in range(8):
        await sync_to_async(lab.task)()
    seen: list[int] = []

    def count_active() -> None:
        seen.append(
            Run.objects.filter(
                batch__isnull=False, status__in=(RunStatus.QUEUED, RunStatus.CONNECTING, RunStatus.RUNNING)
            ).count()
        )

    batch = await _start(lab, "sleep 0.4; echo done", options=BatchOptions(concurrency=3))
    batch = await wait_batch_ended(batch.pk, on_poll=count_active)
    runs = await database_sync_to_async(lambda: list(Run.objects.filter(batch=batch)))()
    assert len(runs) == 8 and all(r.status == RunStatus.SUCCEEDED for r in runs)
    assert max(seen) <= 3
    assert 1 < _max_overlap(runs) <= 3  # targets did run side by side, never more than 3


async def test_stop_after_the_first_failure_starts_no_more_targets(batch_lab):
    lab = batch_lab
    for _ in range(4):
        await sync_to_async(lab.task)()
    batch = await _start(lab, "exit 3", options=BatchOptions(concurrency=1, stop_after_failures=1))
    batch = await wait_batch_ended(batch.pk)
    targets = await database_sync_to_async(_targets)(batch.pk)
    assert [t.state for t in targets] == [TargetState.STARTED] + [TargetState.SKIPPED] * 3
    assert (targets[0].run.status, targets[0].run.exit_code) == (RunStatus.FAILED, 3)
    assert all("stopped starting new targets after 1 failure" in t.skip_reason for t in targets[1:])
    assert batch.status == BatchStatus.FINISHED and "1 ran, 1 failed, 3 not started" in batch.end_reason


async def test_identical_outputs_are_grouped_and_the_failed_one_can_be_run_again(batch_lab):
    lab = batch_lab
    for _ in range(5):
        await sync_to_async(lab.task)()
    lock = f"/tmp/ecsportal-batch-{uuid.uuid4().hex}"
    # Exactly one target (the first to make the directory) prints something else and exits 2.
    command = f"if mkdir {lock} 2>/dev/null; then echo odd one; exit 2; fi; echo same output"
    batch = await _start(lab, command, options=BatchOptions(concurrency=2))
    batch = await wait_batch_ended(batch.pk)
    targets = await database_sync_to_async(_targets)(batch.pk)
    groups = await database_sync_to_async(selectors.output_groups)(targets)
    assert [g.sentence for g in groups] == ["4 targets exited 0 with the same output", "1 target exited 2"]
    assert len({g.output_sha256 for g in groups}) == 2
    summary = await database_sync_to_async(selectors.batch_summary)(batch)
    assert summary["counts"] == {RunStatus.SUCCEEDED: 4, RunStatus.FAILED: 1}
    odd = next(t for t in summary["targets"] if t["exit_code"] == 2)
    assert odd["output_group"] == 2 and odd["bytes"] > 0 and odd["duration_seconds"] is not None
    text = "".join(await database_sync_to_async(lambda: list(selectors.combined_transcript(batch)))())
    assert f"[{targets[0].label}] " in text and text.count("same output\n") == 4 and "odd one\n" in text
    json.dumps(summary)  # serialisable as is
    rerun = await sync_to_async(services.batch_rerun_failed)(user=lab.cast.operator, batch=batch)
    assert rerun.rerun_of_id == batch.pk
    rerun = await wait_batch_ended(rerun.pk)
    again = await database_sync_to_async(_targets)(rerun.pk)
    assert [t.task_arn for t in again] == [odd["task_arn"]]
    assert again[0].run.exit_code == 0  # the lock exists now: it printed "same output"


async def test_one_approval_binds_the_command_and_the_targets(batch_lab, cast):
    lab = batch_lab
    await database_sync_to_async(type(lab.account).objects.filter(pk=lab.account.pk).update)(approvals_for_commands=1)
    for _ in range(3):
        await sync_to_async(lab.task)()
    with pytest.raises(BatchRefused, match="need 1 approval: say why"):
        await _start(lab, "echo approved")
    start = sync_to_async(services.batch_start)
    ok = await start(
        user=cast.operator, spec=spec_for(lab), command="echo approved", options=BatchOptions(), reason="check"
    )
    assert ok.status == BatchStatus.AWAITING_APPROVAL and ok.approval_id
    request = await database_sync_to_async(ApprovalRequest.objects.get)(pk=ok.approval_id)
    assert request.target["targets_sha256"] == ok.targets_sha256 and request.target["targets"] == 3
    describe = await database_sync_to_async(
        lambda: __import__("ecsportal.batches.executor", fromlist=["x"]).batch_describe(request)
    )()
    assert "echo approved" in describe[0] and sum(line.startswith("Target: ") for line in describe) == 3
    # Nothing runs before the approval.
    assert await database_sync_to_async(Run.objects.filter(batch=ok).count)() == 0

    changed_targets = await start(
        user=cast.operator, spec=spec_for(lab), command="echo t", options=BatchOptions(), reason="r"
    )
    other = await sync_to_async(lab.task)()
    await database_sync_to_async(BatchTarget.objects.filter(batch=changed_targets, position=0).update)(
        task_arn=other
    )  # a target swapped after the request was made
    changed_command = await start(
        user=cast.operator, spec=spec_for(lab), command="echo c", options=BatchOptions(), reason="r"
    )
    await database_sync_to_async(Batch.objects.filter(pk=changed_command.pk).update)(command="rm -rf /")

    decide = sync_to_async(approval_decide)
    for batch in (ok, changed_targets, changed_command):
        await decide(actor=cast.approver, request_pk=batch.approval_id, decision="approve")
    ok = await wait_batch_ended(ok.pk)
    assert ok.status == BatchStatus.FINISHED
    assert await database_sync_to_async(Run.objects.filter(batch=ok, status=RunStatus.SUCCEEDED).count)() == 3
    for batch, what in ((changed_targets, "target list"), (changed_command, "command")):
        batch = await database_sync_to_async(Batch.objects.select_related("approval").get)(pk=batch.pk)
        assert batch.status == BatchStatus.REFUSED and f"batch's {what} differs" in batch.end_reason
        assert batch.approval.status == "failed"
        assert await database_sync_to_async(Run.objects.filter(batch=batch).count)() == 0


async def test_a_rejected_batch_ends_without_running(batch_lab, cast):
    lab = batch_lab
    await database_sync_to_async(type(lab.account).objects.filter(pk=lab.account.pk).update)(approvals_for_commands=1)
    await sync_to_async(lab.task)()
    batch = await sync_to_async(services.batch_start)(
        user=cast.operator, spec=spec_for(lab), command="echo no", options=BatchOptions(), reason="r"
    )
    await sync_to_async(approval_decide)(
        actor=cast.approver, request_pk=batch.approval_id, decision="reject", comment="not now"
    )
    batch = await database_sync_to_async(Batch.objects.get)(pk=batch.pk)
    assert batch.status == BatchStatus.CANCELLED and "Rejected by approver: not now" in batch.end_reason


async def test_cancel_all_skips_what_has_not_started_and_stops_what_runs(batch_lab):
    lab = batch_lab
    for _ in range(5):
        await sync_to_async(lab.task)()
    batch = await _start(lab, "sleep 30", options=BatchOptions(concurrency=2))

    def running() -> int:
        return Run.objects.filter(batch=batch, status=RunStatus.RUNNING).count()

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while await database_sync_to_async(running)() < 2:
        assert loop.time() < deadline, "the first two targets never ran"
        await asyncio.sleep(0.05)
    await sync_to_async(services.batch_cancel)(user=lab.cast.operator, batch=batch)
    batch = await wait_batch_ended(batch.pk, timeout=60)
    assert batch.status == BatchStatus.CANCELLED
    targets = await database_sync_to_async(_targets)(batch.pk)
    assert [t.run.status for t in targets if t.run_id] == [RunStatus.CANCELLED] * 2
    assert all("cancelled by operator" in t.skip_reason for t in targets if not t.run_id)


async def test_a_batch_whose_scheduler_died_is_resumed_by_the_sweep(batch_lab, monkeypatch):
    lab = batch_lab
    for _ in range(3):
        await sync_to_async(lab.task)()
    monkeypatch.setattr(scheduler, "kick", lambda pk: None)  # the process "died" before its first pass
    batch = await _start(lab, "echo resumed", options=BatchOptions(concurrency=2))
    # A claim its process never finished: given back after CLAIM_STALE_SECONDS.
    await database_sync_to_async(BatchTarget.objects.filter(batch=batch, position=0).update)(
        state=TargetState.STARTING, claimed_at="2000-01-01T00:00:00Z"
    )
    assert await database_sync_to_async(Run.objects.filter(batch=batch).count)() == 0
    batch = await wait_batch_ended(batch.pk, on_poll=scheduler.batches_sweep)
    assert batch.status == BatchStatus.FINISHED
    assert await database_sync_to_async(Run.objects.filter(batch=batch, status=RunStatus.SUCCEEDED).count)() == 3


async def test_the_one_gate_decides_who_starts_and_who_sees(batch_lab, cast):
    lab = batch_lab
    await sync_to_async(lab.task)()
    with pytest.raises(PermissionDenied):
        await _start(lab, "echo viewer", user=cast.viewer)
    outsider = cast.outsider  # a member of another account only
    with pytest.raises(BatchRefused, match="No such account"):
        await _start(lab, "echo outsider", user=outsider)
    batch = await _start(lab, "echo seen")
    await wait_batch_ended(batch.pk)
    get = sync_to_async(selectors.batch_get_for_user)
    assert (await get(user=cast.viewer, pk=batch.pk)).pk == batch.pk
    with pytest.raises(PermissionDenied):
        await get(user=cast.viewer, pk=batch.pk, min_role=Role.OPERATOR)
    with pytest.raises(Http404):
        await get(user=outsider, pk=batch.pk)
    assert await database_sync_to_async(lambda: list(selectors.batches_for_user(user=outsider)))() == []
    with pytest.raises(PermissionDenied):
        await sync_to_async(services.batch_rerun_failed)(user=cast.viewer, batch=batch)


async def test_options_out_of_bounds_are_refused_with_the_bound(batch_lab):
    lab = batch_lab
    await sync_to_async(lab.task)()
    with pytest.raises(BatchRefused, match="1 to 50"):
        await _start(lab, "echo x", options=BatchOptions(concurrency=51))
    with pytest.raises(BatchRefused, match="Enter a command"):
        await _start(lab, "  ")


async def test_the_target_limit_says_when_it_is_reached(batch_lab, settings):
    lab = batch_lab
    settings.ECSPORTAL_BATCH_MAX_TARGETS = 2
    for _ in range(3):
        await sync_to_async(lab.task)()
    preview = await sync_to_async(services.batch_preview)(user=lab.cast.operator, spec=spec_for(lab))
    assert preview.over_limit and "at most 2 (ECSPORTAL_BATCH_MAX_TARGETS)" in preview.problem
    with pytest.raises(BatchRefused, match="at most 2"):
        await _start(lab, "echo x")


def _runbook(lab, **fields):
    from ecsportal.runbooks.models import Runbook, RunbookOption

    runbook = Runbook.objects.create(name=f"greet {lab.cluster}", command_template="echo hello {who} {token}", **fields)
    runbook.accounts.add(lab.account)
    RunbookOption.objects.create(runbook=runbook, position=0, name="who", label="Who")
    RunbookOption.objects.create(runbook=runbook, position=1, name="token", label="Token", secret=True)
    return runbook


async def test_a_runbook_on_many_quotes_its_values_masks_secrets_and_keeps_to_its_globs(batch_lab):
    lab = batch_lab
    for _ in range(2):
        await sync_to_async(lab.task)()
    await sync_to_async(lab.task)(sidecar=True)
    runbook = await database_sync_to_async(_runbook)(lab, container_pattern="app")
    preview = await sync_to_async(services.batch_preview)(
        user=lab.cast.operator, spec=spec_for(lab, container="sidecar"), runbook=runbook
    )
    assert not preview.targets and "runs only in containers matching app" in preview.skipped[0].reason
    with pytest.raises(BatchRefused, match="who"):
        await sync_to_async(services.batch_start)(
            user=lab.cast.operator, spec=spec_for(lab, container="app"), command=None, runbook=runbook,
            values={"token": "s3cret"}, options=BatchOptions(),
        )  # fmt: skip
    batch = await sync_to_async(services.batch_start)(
        user=lab.cast.operator, spec=spec_for(lab, container="app"), command=None, runbook=runbook,
        values={"who": "a b; id", "token": "s3cret"}, options=BatchOptions(),
    )  # fmt: skip
    assert "s3cret" not in batch.command and batch.command_sealed and batch.runbook_name == runbook.name
    batch = await wait_batch_ended(batch.pk)
    assert batch.command_sealed == ""  # the real command is wiped once the batch has ended
    text = "".join(await database_sync_to_async(lambda: list(selectors.combined_transcript(batch)))())
    assert text.count("hello a b; id s3cret\n") == 3  # one argument each, run for real
    runs = await database_sync_to_async(lambda: list(Run.objects.filter(batch=batch)))()
    assert len(runs) == 3 and all("s3cret" not in r.command and r.runbook_name == runbook.name for r in runs)
    with pytest.raises(BatchRefused, match="secret values"):
        await sync_to_async(services.batch_rerun_failed)(user=lab.cast.operator, batch=batch)
