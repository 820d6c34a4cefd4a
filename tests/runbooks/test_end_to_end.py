"""Runbooks end to end: the form → the rendered command → the runner → moto's seam → the SSM emulator.

The emulator runs each command for real on this machine (split shell-style, no shell, as the
agent does); in shell mode the runner wraps it in /bin/sh -c. `printf '%s|'` prints each
argument it received followed by a bar, so the transcript shows exactly how many arguments
arrived and what they held.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.test import Client

from ecsportal.approvals.models import ApprovalRequest
from ecsportal.audit.models import AuditEvent
from ecsportal.runbooks.models import Runbook
from ecsportal.runs.models import Run, RunMode, RunStatus
from ecsportal.runs.selectors import run_transcript_bytes
from tests.runbooks.test_views import task_id
from tests.runs.lab import wait_ended

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

INJECTIONS = [
    "; rm -rf /",
    "$(id)",
    "`id`",
    "it's a 'quote'",
    'double "quotes" \\" here',
    "line one\nline two; id",
    "' ; echo pwned ; '",
    "--help",
    "*",
    "$HOME ~root",
    "x" * 4096,
]


@pytest.fixture
def runner(settings, local_aws, data_channel):
    settings.ECSPORTAL_RUNNER_MODE = "inprocess"
    settings.ECSPORTAL_RUN_HEARTBEAT_SECONDS = 0.2
    settings.ECSPORTAL_RUN_TASK_CHECK_SECONDS = 0.5


def _submit(user, runbook: Runbook, cast, **values: str) -> tuple[int, str, Run | None]:
    client = Client()
    client.force_login(user)
    data = {
        "account": str(cast.prod.pk),
        "region": "eu-west-1",
        "cluster": "prod-web",
        "task": task_id(cast, "prod-web", "web"),
        "container": "app",
        **values,
    }
    answer = client.post(f"/runbooks/{runbook.pk}/", data)
    run = Run.objects.select_related("approval").order_by("-pk").first()
    return answer.status_code, answer.get("Location", ""), run


async def _run(user, runbook, cast, **values: str) -> Run:
    """Submit the form and wait for the run's end. Every database call here is thread-sensitive
    (one thread, in turn with the runner's): SQLite's shared in-memory test database refuses
    concurrent writers instead of waiting."""
    from ecsportal.runs import dispatcher

    dispatcher.bind_loop(asyncio.get_running_loop())
    status, location, run = await sync_to_async(_submit)(user, runbook, cast, **values)
    assert status == 302 and run is not None
    assert location == f"/runs/{run.pk}/"
    return await wait_ended(run.pk)


def _printed(transcript: bytes) -> str:
    return transcript.decode().replace("\r\n", "\n")


@pytest.mark.parametrize("mode", [RunMode.SHELL, RunMode.RAW])
@pytest.mark.parametrize("value", INJECTIONS, ids=lambda v: repr(v[:20]))
async def test_an_injection_attempt_arrives_as_one_literal_argument(cast, echo_book, runner, mode, value):
    await database_sync_to_async(Runbook.objects.filter(pk=echo_book.pk).update)(mode=mode)

    run = await _run(cast.operator, echo_book, cast, opt_message=value, opt_count="3")

    transcript = await sync_to_async(run_transcript_bytes)(run=run)
    assert _printed(transcript) == f"{value}|3|"  # exactly two arguments: the value, whole, then 3
    assert run.runbook_name == "Echo"
    if mode == RunMode.SHELL:
        assert (run.status, run.exit_code) == (RunStatus.SUCCEEDED, 0)
    else:
        assert (run.status, run.exit_code) == (RunStatus.COMPLETED, None)  # raw mode: no shell, no exit marker


async def test_a_nul_byte_never_reaches_the_container(cast, echo_book, runner):
    status, _, run = await sync_to_async(_submit)(
        cast.operator, echo_book, cast, opt_message="a\x00; id", opt_count="3"
    )
    assert status == 422 and run is None


def _scan_for(secret: str) -> list[str]:
    """Every stored place a secret must never be found in clear."""
    found = []
    for run in Run.objects.all():
        for name in ("command", "command_sealed", "reason", "end_reason"):
            if secret in getattr(run, name):
                found.append(f"Run.{name}")
    for event in AuditEvent.objects.all():
        if secret in str(event.details) or secret in event.target:
            found.append(f"AuditEvent {event.action}")
    for request in ApprovalRequest.objects.all():
        if secret in str(request.target) or secret in request.target_label or secret in request.reason:
            found.append("ApprovalRequest")
    return found


async def test_a_secret_reaches_the_container_and_is_stored_nowhere_in_clear(cast, runner, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "hunter2-Secret-Value-42"
    book = await database_sync_to_async(Runbook.objects.get)(name="Fingerprint a token")

    run = await _run(cast.operator, book, cast, opt_token=secret)

    transcript = await sync_to_async(run_transcript_bytes)(run=run)
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in transcript  # the real value was used
    assert run.command == "printf %s '••••••' | sha256sum"
    assert await sync_to_async(_scan_for)(secret) == []
    assert run.command_sealed == ""  # the sealed real command is wiped when the run ends
    assert secret not in caplog.text


async def test_a_runbook_needing_approval_waits_with_the_secret_sealed(cast, runner, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "approval-Secret-Value-7"
    book = await database_sync_to_async(Runbook.objects.get)(name="Fingerprint a token")
    await database_sync_to_async(Runbook.objects.filter(pk=book.pk).update)(needs_approval=True)

    status, location, run = await sync_to_async(_submit)(
        cast.operator, book, cast, opt_token=secret, reason="check the rotated token"
    )

    assert status == 302 and location == f"/runs/{run.pk}/"
    assert run.status == RunStatus.AWAITING_APPROVAL
    assert run.approval is not None and run.approval.action == "ecs.execute_runbook"
    assert run.command_sealed and secret not in run.command_sealed  # encrypted until it runs
    assert await sync_to_async(_scan_for)(secret) == []
    assert secret not in caplog.text


async def test_once_approved_the_sealed_command_runs_with_the_real_secret(cast, runner):
    from ecsportal.approvals.services import approval_decide
    from ecsportal.runs import dispatcher

    dispatcher.bind_loop(asyncio.get_running_loop())
    secret = "after-approval-Secret-9"
    book = await database_sync_to_async(Runbook.objects.get)(name="Fingerprint a token")
    await database_sync_to_async(Runbook.objects.filter(pk=book.pk).update)(needs_approval=True)
    _, _, run = await sync_to_async(_submit)(
        cast.operator, book, cast, opt_token=secret, reason="check the rotated token"
    )

    # thread-sensitive: the runner's database calls wait for this one (SQLite's shared
    # in-memory test database refuses concurrent writers instead of waiting)
    await sync_to_async(approval_decide)(actor=cast.approver, request_pk=run.approval_id, decision="approve")
    run = await wait_ended(run.pk)

    transcript = await sync_to_async(run_transcript_bytes)(run=run)
    assert run.status == RunStatus.SUCCEEDED
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in transcript
    assert run.command_sealed == ""
    assert await sync_to_async(_scan_for)(secret) == []


async def test_a_runbook_needing_approval_asks_why(cast, runner):
    book = await database_sync_to_async(Runbook.objects.get)(name="Disk usage of a directory")
    status, _, run = await sync_to_async(_submit)(cast.operator, book, cast, opt_dir="/var/log")
    assert status == 422 and run is None  # Acme Production asks for 1 runbook approval: the reason is needed
