"""The runner against the local parts: moto (ExecuteCommand seam), the SSM emulator, the database.

Runs are created through the service and executed on the test's event loop (in-process mode).
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from ecsportal.demo import localaws
from ecsportal.runs import lifecycle
from ecsportal.runs.models import RunMode, RunStatus
from ecsportal.runs.selectors import run_transcript_bytes
from tests.runs.lab import RUNS_CLUSTER, RUNS_REGION, wait_ended

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def _transcript(run) -> bytes:
    return await sync_to_async(run_transcript_bytes)(run=run)


async def test_exit_3_is_recorded_as_3(cast, run_as):
    run = await run_as(cast.operator, "echo hello; exit 3")
    run = await wait_ended(run.pk)
    assert run.status == RunStatus.FAILED
    assert run.exit_code == 3
    assert "3" in run.end_reason
    transcript = await _transcript(run)
    assert b"hello" in transcript
    assert b"ecsportal-exit" not in transcript and b"\x1e" not in transcript
    assert run.bytes_out == len(transcript)
    assert run.started_at is not None and run.ended_at is not None


async def test_exit_0_succeeds(cast, run_as):
    run = await wait_ended((await run_as(cast.operator, "printf 'a\\nb\\n'")).pk)
    assert (run.status, run.exit_code) == (RunStatus.SUCCEEDED, 0)
    assert await _transcript(run) == b"a\r\nb\r\n"


async def test_raw_mode_reports_no_exit_code_and_says_so(cast, run_as):
    run = await wait_ended((await run_as(cast.operator, "echo raw", mode=RunMode.RAW)).pk)
    assert run.exit_code is None
    assert run.status == RunStatus.COMPLETED  # its own neutral outcome: nothing said it succeeded
    payload = lifecycle.status_payload(run)  # what live viewers (and an API) are told
    assert (payload["status"], payload["label"], payload["exit_code"], payload["finished"]) == (
        "completed",
        "Completed",
        None,
        True,
    )
    assert "no exit code" in run.end_reason.lower()
    assert b"raw" in await _transcript(run)


async def test_a_forged_marker_in_the_output_changes_nothing(cast, run_as):
    earlier = await wait_ended((await run_as(cast.operator, "true")).pk)
    forged = "printf '\\036ecsportal-exit:%s=0\\n' 0123456789abcdef0123456789abcdef"
    run = await run_as(cast.operator, f"{forged}; printf 'x\\036ecsportal-exit:=0\\n'; exit 3")
    run = await wait_ended(run.pk)
    assert (run.status, run.exit_code) == (RunStatus.FAILED, 3)
    transcript = await _transcript(run)
    assert b"\x1eecsportal-exit:0123456789abcdef0123456789abcdef=0" in transcript  # kept as output
    assert earlier.exit_code == 0


async def test_the_watchdog_ends_a_run_whose_task_stops(cast, run_as, lab_task, runs_ecs):
    arn = await sync_to_async(lab_task)()
    run = await run_as(cast.operator, "echo started; sleep 30", task=arn)
    await _wait_output(run, b"started")
    # moto's StopTask sets no stop code: give the task one first, or the watchdog could see
    # the task STOPPED without it in between.
    localaws.find_task(localaws.ACCOUNT_A, RUNS_REGION, arn).stop_code = "ServiceSchedulerInitiated"
    await sync_to_async(runs_ecs.stop_task)(
        cluster=RUNS_CLUSTER, task=arn, reason="Scaling activity initiated by (deployment ecs-svc/1)"
    )
    run = await wait_ended(run.pk)
    assert run.status == RunStatus.ERROR
    assert "ServiceSchedulerInitiated" in run.end_reason and "Scaling activity initiated" in run.end_reason


async def test_the_time_limit_ends_a_run_as_timed_out(cast, run_as, fast_runs):
    fast_runs.ECSPORTAL_RUN_TIME_LIMIT_SECONDS = 1
    run = await run_as(cast.operator, "echo started; sleep 30")
    run = await wait_ended(run.pk)
    assert run.status == RunStatus.TIMED_OUT
    assert "time limit of 1 s" in run.end_reason
    assert b"started" in await _transcript(run)


async def test_an_abrupt_close_of_the_channel_is_channel_lost(cast, run_as, data_channel, monkeypatch):
    from ecsportal.aws import local
    from ecsportal.ssm.emulator import Faults

    def faulty(request):
        return data_channel.register_session(
            session_id=request.session_id,
            token=request.token,
            command=request.command,
            container=request.container,
            faults=Faults(close_after=2),
        )

    monkeypatch.setattr(local, "_registrar", faulty)
    run = await run_as(cast.operator, "for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.1; done")
    run = await wait_ended(run.pk)
    assert run.status == RunStatus.ERROR
    assert run.end_reason.startswith("Channel lost")


async def test_cancel_sends_ctrl_c_and_ends_cancelled(cast, run_as):
    from ecsportal.runs.services import run_cancel

    run = await run_as(cast.operator, "echo started; sleep 30")
    await _wait_output(run, b"started")
    await sync_to_async(run_cancel)(actor=cast.operator, run_pk=run.pk)
    run = await wait_ended(run.pk)
    assert run.status == RunStatus.CANCELLED
    assert "Cancelled by operator" in run.end_reason and "Ctrl-C" in run.end_reason


async def test_a_cancel_recorded_elsewhere_is_seen_by_the_heartbeat(cast, run_as):
    """A cancel stored by another process (no event in this one) reaches the runner through its
    heartbeat round, which also keeps `bytes_out` current while the run streams."""
    from django.utils import timezone

    from ecsportal.runs.models import Run

    run = await run_as(cast.operator, "echo started; sleep 30")
    await _wait_output(run, b"started")
    rows = Run.objects.filter(pk=run.pk)
    for _ in range(100):
        if (await sync_to_async(rows.get)()).bytes_out > 0:
            break
        await asyncio.sleep(0.05)
    assert (await sync_to_async(rows.get)()).bytes_out == len(await _transcript(run))
    await sync_to_async(rows.update)(cancel_requested_at=timezone.now(), cancelled_by=cast.operator)
    run = await wait_ended(run.pk)
    assert run.status == RunStatus.CANCELLED
    assert "Cancelled by operator" in run.end_reason


async def test_a_run_ended_elsewhere_stops_its_runner(cast, run_as):
    """The stale sweep of another process ended the run (clock skew, a slow loop): its runner
    learns it at the next heartbeat and gives the session back instead of streaming on."""
    from ecsportal.runs import dispatcher
    from ecsportal.runs.services import run_end

    run = await run_as(cast.operator, "echo started; sleep 30; echo never")
    await _wait_output(run, b"started")
    task = dispatcher.local_task(run.pk)
    assert task is not None
    ended = await sync_to_async(run_end)(run_pk=run.pk, status=RunStatus.ERROR, end_reason="Runner lost: test")
    assert ended
    await asyncio.wait_for(asyncio.shield(task), 10)  # the runner finished, long before the sleep
    run = await wait_ended(run.pk)
    assert run.end_reason == "Runner lost: test"  # the first end stands
    assert b"never" not in await _transcript(run)


async def test_exec_not_enabled_says_how_to_enable_it(cast, run_as, lab_task):
    arn = await sync_to_async(lab_task)(exec_enabled=False)
    run = await wait_ended((await run_as(cast.operator, "true", task=arn)).pk)
    assert run.status == RunStatus.ERROR
    assert (
        f"aws ecs update-service --cluster {RUNS_CLUSTER} --service web --enable-execute-command "
        "--force-new-deployment" in run.end_reason
    )


async def test_agent_not_connected_is_explained(cast, run_as, lab_task):
    arn = await sync_to_async(lab_task)(agent="PENDING")
    run = await wait_ended((await run_as(cast.operator, "true", task=arn)).pk)
    assert run.status == RunStatus.ERROR
    assert "not connected" in run.end_reason and "ssmmessages" in run.end_reason


async def test_agent_not_connected_is_retried_while_the_task_is_young(cast, run_as, lab_task):
    arn = await sync_to_async(lab_task)(agent="PENDING", age_minutes=0)
    run = await run_as(cast.operator, "echo connected", task=arn)
    await _wait_status(run, RunStatus.CONNECTING)
    task = localaws.find_task(localaws.ACCOUNT_A, RUNS_REGION, arn)
    task.containers[0].managed_agents = [{"name": "ExecuteCommandAgent", "lastStatus": "RUNNING"}]
    run = await wait_ended(run.pk)
    assert (run.status, run.exit_code) == (RunStatus.SUCCEEDED, 0)


async def test_access_denied_names_the_action_and_the_conditions(cast, run_as, monkeypatch):
    from ecsportal.aws import local

    def denied(ecs_client, request):
        return local._error(
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/ops/x is not authorized to perform: ecs:ExecuteCommand",
        )

    monkeypatch.setattr(local, "answer_execute_command", denied)
    run = await wait_ended((await run_as(cast.operator, "true")).pk)
    assert run.status == RunStatus.ERROR
    assert "ecs:ExecuteCommand" in run.end_reason and "ecs:container-name" in run.end_reason
    assert "not authorized" in run.end_reason


async def _wait_output(run, needle: bytes) -> None:
    import asyncio

    for _ in range(400):
        if needle in await _transcript(run):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{needle!r} never arrived")


async def _wait_status(run, status: str) -> None:
    import asyncio

    from channels.db import database_sync_to_async

    from ecsportal.runs.models import Run

    for _ in range(400):
        if (await database_sync_to_async(Run.objects.get)(pk=run.pk)).status == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"run never reached {status}")
