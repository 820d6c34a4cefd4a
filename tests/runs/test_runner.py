"""The runner against the local parts: moto (ExecuteCommand seam), the SSM emulator, the database.

Runs are created through the service and executed on the test's event loop (in-process mode).
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from ecsportal.runs.models import RunStatus
from ecsportal.runs.selectors import run_transcript_bytes
from tests.runs.lab import *  # noqa: F403

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def _transcript(run) -> bytes:  # noqa: ANN001
    return await sync_to_async(run_transcript_bytes)(run=run)


async def test_exit_3_is_recorded_as_3(cast, run_as):
    run = await run_as(cast.operator, "echo hello; exit 3")
    run = await wait_ended(run.pk)  # noqa: F405
    assert run.status == RunStatus.FAILED
    assert run.exit_code == 3
    assert "3" in run.end_reason
    transcript = await _transcript(run)
    assert b"hello" in transcript
    assert b"ecsportal-exit" not in transcript and b"\x1e" not in transcript
    assert run.bytes_out == len(transcript)
    assert run.started_at is not None and run.ended_at is not None


async def test_exit_0_succeeds(cast, run_as):
    run = await wait_ended((await run_as(cast.operator, "printf 'a\\nb\\n'")).pk)  # noqa: F405
    assert (run.status, run.exit_code) == (RunStatus.SUCCEEDED, 0)
    assert await _transcript(run) == b"a\r\nb\r\n"
