"""The run socket through the full ASGI application, with moto's server and the SSM emulator."""

from __future__ import annotations

import base64
import json

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from ecsportal.accounts.sockets import CLOSE_FORBIDDEN, CLOSE_LOGGED_OUT, CLOSE_UNAUTHENTICATED, user_group
from ecsportal.runs.models import Run, RunStatus
from ecsportal.runs.selectors import run_transcript_bytes
from tests.runs.lab import connect, read_until_finished, wait_ended

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

SLOW = "echo one; sleep 1; echo two; sleep 1; echo three"


async def _until(communicator, needle: bytes) -> tuple[bytes, list[int]]:
    """Read output messages until `needle` has arrived; (bytes so far, seqs so far)."""
    data, seqs = bytearray(), []
    while needle not in data:
        message = json.loads(await communicator.receive_from(timeout=20))
        if message["type"] == "output":
            seqs.append(message["seq"])
            data.extend(base64.b64decode(message["data"]))
        assert not (message["type"] == "status" and message["finished"]), data
    return bytes(data), seqs


async def test_socket_access(cast, run_as, runs_lab):
    run = await run_as(cast.operator, "echo hi")
    await wait_ended(run.pk)
    path = f"/ws/runs/{run.pk}/"
    communicator, connected, code = await connect(path)
    assert (connected, code) == (False, CLOSE_UNAUTHENTICATED)
    communicator, connected, code = await connect(path, cast.outsider)
    assert (connected, code) == (False, CLOSE_FORBIDDEN)
    communicator, connected, code = await connect(f"/ws/runs/{run.pk + 1000}/", cast.operator)
    assert (connected, code) == (False, CLOSE_FORBIDDEN)
    for user in (cast.viewer, cast.operator, cast.admin):
        communicator, connected, _ = await connect(path, user)
        assert connected, user
        seen = await read_until_finished(communicator)
        assert b"hi" in seen.data
        await communicator.disconnect()


async def test_output_arrives_live_and_every_viewer_sees_the_same_bytes(cast, run_as, lab_task):
    run = await run_as(cast.operator, SLOW)
    first, ok1, _ = await connect(f"/ws/runs/{run.pk}/", cast.viewer)
    second, ok2, _ = await connect(f"/ws/runs/{run.pk}/", cast.operator)
    assert ok1 and ok2
    await _until(first, b"one")
    # "one" is on the screen while the command is still running: it came live, not at the end.
    assert (await database_sync_to_async(Run.objects.get)(pk=run.pk)).status == RunStatus.RUNNING
    rest = await read_until_finished(first, replayed=0)
    other = await read_until_finished(second)
    run = await wait_ended(run.pk)
    transcript = await sync_to_async(run_transcript_bytes)(run=run)
    assert b"one" in transcript and b"three" in transcript
    assert other.data == transcript
    assert other.seqs == list(range(1, len(other.seqs) + 1))
    assert rest.statuses[-1]["status"] == "succeeded" and rest.statuses[-1]["exit_code"] == 0
    late, ok3, _ = await connect(f"/ws/runs/{run.pk}/", cast.viewer)
    assert ok3
    seen = await read_until_finished(late)
    assert seen.data == transcript and seen.replayed == seen.seqs[-1]
    for communicator in (first, second, late):
        await communicator.disconnect()


async def test_a_viewer_who_reconnects_misses_nothing_and_sees_nothing_twice(cast, run_as):
    run = await run_as(cast.operator, SLOW)
    viewer, ok, _ = await connect(f"/ws/runs/{run.pk}/", cast.viewer)
    assert ok
    before, seqs = await _until(viewer, b"one")
    await viewer.disconnect()
    again, ok, _ = await connect(f"/ws/runs/{run.pk}/?after={seqs[-1]}", cast.viewer)
    assert ok
    after = await read_until_finished(again)
    await again.disconnect()
    run = await wait_ended(run.pk)
    transcript = await sync_to_async(run_transcript_bytes)(run=run)
    assert before + after.data == transcript
    assert seqs + after.seqs == list(range(1, len(seqs) + len(after.seqs) + 1))


async def test_status_messages_arrive_and_logout_closes_the_socket(cast, run_as):
    run = await run_as(cast.operator, "sleep 1; echo done")
    viewer, ok, _ = await connect(f"/ws/runs/{run.pk}/", cast.viewer)
    assert ok
    seen = await read_until_finished(viewer)
    labels = [s["status"] for s in seen.statuses]
    assert labels[-1] == "succeeded" and seen.statuses[-1]["bytes"] == len(seen.data)
    assert seen.statuses[-1]["ended_at"] is not None
    await get_channel_layer().group_send(user_group(cast.viewer.pk), {"type": "session.revoked"})
    closed = await viewer.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": CLOSE_LOGGED_OUT}


async def test_the_operator_sees_a_rejection_live_in_the_approvers_words(cast, run_as, runs_lab):
    from ecsportal.approvals.services import approval_decide

    runs_lab.approvals_for_commands = 1
    await database_sync_to_async(runs_lab.save)()
    run = await run_as(cast.operator, "echo never", reason="checking the queue")
    page, ok, _ = await connect(f"/ws/runs/{run.pk}/", cast.operator)
    assert ok
    assert json.loads(await page.receive_from(timeout=10))["status"] == RunStatus.AWAITING_APPROVAL
    await sync_to_async(approval_decide)(
        actor=cast.approver, request_pk=run.approval_id, decision="reject", comment="Use the runbook."
    )
    seen = await read_until_finished(page, timeout=5, replayed=0)  # within seconds, not at the next sweep
    last = seen.statuses[-1]
    assert last["status"] == RunStatus.CANCELLED
    assert last["end_reason"] == f"Rejected by {cast.approver.get_username()}: Use the runbook."
    await page.disconnect()


async def test_a_viewer_that_asks_gets_the_stored_output_and_status_it_missed(cast, runs_lab):
    """A status message the layer never delivered (a broker restart, a full queue) does not
    leave the page "running": the viewer asks after hearing nothing, and the database answers."""
    from ecsportal.runs.models import RunChunk
    from tests.runs.lab import stored_run

    run = await database_sync_to_async(stored_run)(
        account=runs_lab, requested_by=cast.operator, status=RunStatus.RUNNING
    )
    page, ok, _ = await connect(f"/ws/runs/{run.pk}/", cast.viewer)
    assert ok
    assert json.loads(await page.receive_from(timeout=10))["status"] == RunStatus.RUNNING
    assert json.loads(await page.receive_from(timeout=10))["type"] == "replayed"
    # The run stored its last output and ended, and neither message reached this socket.
    await database_sync_to_async(RunChunk.objects.create)(run_id=run.pk, seq=1, offset=0.1, data=b"bye\r\n")
    await database_sync_to_async(Run.objects.filter(pk=run.pk).update)(status=RunStatus.SUCCEEDED, exit_code=0)
    for noise in ("not json", json.dumps({"type": "cancel"}), json.dumps([1]), "x" * 5000):
        await page.send_to(text_data=noise)  # ignored, and the socket stays open
    await page.send_to(text_data=json.dumps({"type": "status"}))
    seen = await read_until_finished(page, timeout=5, replayed=0)
    assert seen.data == b"bye\r\n" and seen.seqs == [1]
    assert seen.statuses[-1]["status"] == RunStatus.SUCCEEDED
    await page.disconnect()
