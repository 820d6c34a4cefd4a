"""Opening and ending a shell over HTTP, its page, and its recording, with the fixed cast."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from ecsportal.audit.models import AuditEvent
from ecsportal.runs import interactive
from ecsportal.runs.models import Run, RunChunk, RunStatus, SessionEvent
from ecsportal.shells.policy import ShellPermit
from tests.runs.test_views import _staging_task

pytestmark = pytest.mark.django_db


def _fields(cast, **changes) -> dict[str, object]:
    fields = {
        "account": cast.staging.pk,
        "region": "eu-west-1",
        "cluster": "staging",
        "task": _staging_task(),
        "container": "app",
    }
    return {**fields, **changes}


def test_anonymous_visitors_are_sent_to_log_in_and_nothing_opens(client, cast):
    answer = client.post("/runs/shell/", {"account": cast.staging.pk})
    assert answer.status_code == 302 and "/login/" in answer["Location"]
    assert not Run.objects.exists()


def test_a_viewer_is_refused_with_the_role_needed(cast, login, local_aws):
    answer = login(cast.viewer).post("/runs/shell/", _fields(cast))
    assert answer.status_code == 403  # an operator nowhere: refused before the form is read, as the run form
    assert "operator" in answer.content.decode().lower()
    assert not Run.objects.exists()


def test_an_outsider_gets_not_found(cast, login, local_aws):
    answer = login(cast.outsider).post("/runs/shell/", _fields(cast, task="abc"))
    assert answer.status_code == 404
    assert not Run.objects.exists()


def test_an_operator_opens_a_shell_and_lands_on_its_terminal(cast, login, local_aws):
    client = login(cast.operator)
    answer = client.post("/runs/shell/", _fields(cast))
    run = Run.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/runs/{run.pk}/"
    assert (run.interactive, run.command, run.keyboard_holder, run.status) == (
        True,
        interactive.AUTO_SHELL,  # the account's default, "auto"
        cast.operator,
        RunStatus.QUEUED,
    )
    assert AuditEvent.objects.filter(action="shell.opened", details__run=run.pk).exists()
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert f'data-socket="/ws/sessions/{run.pk}/"' in page and "data-interactive" in page
    assert 'id="session-panel"' in page and 'id="shell-end"' in page and "shell-terminal.js" in page
    assert 'id="run-again"' not in page  # a shell is not run again from its page


def test_an_unknown_container_is_refused_in_words(cast, login, local_aws):
    answer = login(cast.operator).post("/runs/shell/", _fields(cast, container="nope"))
    assert answer.status_code == 422
    assert "has no container named nope" in answer.content.decode()
    assert not Run.objects.exists()


def test_the_account_policy_refusal_says_why_and_where_to_ask(cast, login, local_aws, monkeypatch):
    def refuse(user, account, **target):
        return ShellPermit(
            allowed=False,
            reason="Shells on Acme Staging need an access request.",
            request_url="/shells/requests/new/",
            moderated=False,
            record_input=False,
            shell_command="/bin/sh",
            expires_at=None,
        )

    monkeypatch.setattr(interactive, "shell_permit", refuse)
    answer = login(cast.operator).post("/runs/shell/", _fields(cast), HTTP_HX_REQUEST="true")
    assert answer.status_code == 422
    body = answer.content.decode()
    assert "need an access request" in body and "/shells/requests/new/" in body
    assert not Run.objects.exists()


def test_the_policy_terms_are_kept_on_the_shell(cast, login, local_aws, monkeypatch):
    def moderated(user, account, **target):
        return ShellPermit(
            allowed=True,
            reason="",
            request_url=None,
            moderated=True,
            record_input=True,
            shell_command="/bin/bash",
            expires_at=None,
        )

    monkeypatch.setattr(interactive, "shell_permit", moderated)
    login(cast.operator).post("/runs/shell/", _fields(cast))
    run = Run.objects.get()
    assert (run.moderated, run.record_input, run.command) == (True, True, "/bin/bash")
    # Moderated, and nobody but the owner here: input is paused, and every page is told why.
    assert "no approver" in interactive.session_state(run.pk)["paused"]


def test_end_shell_before_it_started_ends_it_at_once_and_only_for_operators(cast, login, local_aws):
    login(cast.operator).post("/runs/shell/", _fields(cast))
    run = Run.objects.get()
    assert login(cast.viewer).post(f"/runs/{run.pk}/end/").status_code == 403
    assert login(cast.outsider).post(f"/runs/{run.pk}/end/").status_code == 404
    answer = login(cast.operator).post(f"/runs/{run.pk}/end/")
    assert answer.status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and run.end_reason == "Ended by operator."
    assert AuditEvent.objects.filter(action="shell.end_requested", details__run=run.pk).exists()


def test_the_asciicast_carries_resizes_and_who_typed_in_time_order(cast, login):
    run = Run.objects.create(
        account=cast.staging,
        region="eu-west-1",
        cluster="staging",
        task_arn="arn:aws:ecs:eu-west-1:222222222222:task/staging/abc",
        container="app",
        command="/bin/sh",
        command_sha256="0" * 64,
        requested_by=cast.operator,
        status=RunStatus.COMPLETED,
        interactive=True,
    )
    RunChunk.objects.create(run=run, seq=1, offset=0.1, data=b"$ ")
    RunChunk.objects.create(run=run, seq=2, offset=1.5, data=b"42\r\n")
    SessionEvent.objects.create(run=run, offset=0.5, kind="r", data="91x27")
    SessionEvent.objects.create(run=run, offset=1.0, kind="m", data="operator typed", user=cast.operator)
    lines = login(cast.operator).get(f"/runs/{run.pk}/transcript.cast").content.decode().splitlines()
    events = [json.loads(line) for line in lines[1:]]
    assert [e[1] for e in events] == ["o", "r", "m", "o"]
    assert events[1][2] == "91x27" and events[2][2] == "operator typed"
    assert [e[0] for e in events] == sorted(e[0] for e in events)
    assert json.loads(lines[0])["title"].startswith("shell #")


def test_the_task_page_offers_a_shell_to_operators_only(cast, login, local_aws):
    task = _staging_task()
    path = f"/inventory/{cast.staging.pk}/eu-west-1/staging/tasks/{task}/"
    assert "Open a shell" in login(cast.operator).get(path).content.decode()
    assert "Open a shell" not in login(cast.viewer).get(path).content.decode()


def test_live_shells_are_listed_with_who_is_in_them_on_home_and_the_task_page(cast, login, local_aws):
    from ecsportal.runs.models import SessionSeat

    login(cast.operator).post("/runs/shell/", _fields(cast))
    run = Run.objects.get()
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    SessionSeat.objects.create(run=run, user=cast.operator, channel_name="test!a")
    SessionSeat.objects.create(run=run, user=cast.viewer, channel_name="test!b")
    home = login(cast.viewer).get("/").content.decode()
    assert 'id="home-shells"' in home and f"Shell #{run.pk}" in home
    assert "here: <bdi>operator</bdi>, <bdi>viewer</bdi>" in home
    assert f"Shell #{run.pk}" not in login(cast.outsider).get("/").content.decode()
    task = run.task_id
    page = login(cast.viewer).get(f"/inventory/{cast.staging.pk}/eu-west-1/staging/tasks/{task}/").content.decode()
    assert 'id="task-shells"' in page and f"Shell #{run.pk}" in page
    # A seat its process stopped renewing (the process was killed) is nobody, before any sweep.
    SessionSeat.objects.filter(channel_name="test!b").update(seen_at=timezone.now() - timedelta(minutes=5))
    assert "here: <bdi>operator</bdi></td>" in login(cast.viewer).get("/").content.decode()
    page = login(cast.viewer).get(f"/inventory/{cast.staging.pk}/eu-west-1/staging/tasks/{task}/").content.decode()
    assert "here: <bdi>operator</bdi></li>" in page
    Run.objects.filter(pk=run.pk).update(status=RunStatus.COMPLETED)
    assert 'id="home-shells"' not in login(cast.viewer).get("/").content.decode()
