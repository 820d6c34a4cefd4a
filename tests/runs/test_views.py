from __future__ import annotations

import json
import re

import pytest
from django.utils import timezone

from ecsportal.audit.models import AuditEvent
from ecsportal.aws import ecs
from ecsportal.runs.models import Run, RunChunk, RunMode, RunStatus

pytestmark = pytest.mark.django_db

TASK_ARN = "arn:aws:ecs:eu-west-1:222222222222:task/staging/0123456789abcdef"
HOSTILE = b"\x1b[31m<script>alert(1)</script>\x1b[0m\r\n<img src=x onerror=alert(1)>\r\n"


def _run(cast, *, account=None, user=None, status=RunStatus.SUCCEEDED, cluster="staging", **fields) -> Run:
    defaults = {
        "region": "eu-west-1",
        "task_arn": TASK_ARN.replace("staging", cluster),
        "container": "app",
        "command": "echo hi",
        "exit_code": 0 if status == RunStatus.SUCCEEDED else None,
        "started_at": timezone.now(),
        "ended_at": timezone.now() if status not in (RunStatus.QUEUED, RunStatus.RUNNING) else None,
    }
    defaults.update(fields)
    return Run.objects.create(
        account=account or cast.staging, cluster=cluster, requested_by=user or cast.operator, status=status, **defaults
    )


def _with_output(run: Run, *parts: bytes) -> Run:
    for seq, data in enumerate(parts, start=1):
        RunChunk.objects.create(run=run, seq=seq, offset=0.5 * seq, data=data)
    return run


def _staging_task() -> str:
    from ecsportal.accounts.models import AwsAccount

    config = AwsAccount.objects.get(name="Acme Staging").aws_config()
    arns = ecs.list_task_arns(config, "eu-west-1", "staging")
    for task in ecs.describe_tasks(config, "eu-west-1", "staging", arns):
        if task.task_definition.startswith("web:"):
            return task.id
    raise AssertionError("no web task in the staging cluster")


# --- anonymous, outsider, viewer


@pytest.mark.parametrize(
    "path", ["/runs/", "/runs/new/", "/runs/1/", "/runs/1/transcript.txt", "/runs/1/transcript.cast", "/runs/pick/"]
)
def test_anonymous_visitors_are_sent_to_log_in(client, path):
    answer = client.get(path)
    assert answer.status_code == 302 and answer["Location"].startswith("/login/")


def test_anonymous_cancel_is_sent_to_log_in_and_changes_nothing(client, cast):
    run = _run(cast, status=RunStatus.RUNNING)
    answer = client.post(f"/runs/{run.pk}/cancel/")
    assert answer.status_code == 302 and answer["Location"].startswith("/login/")
    run.refresh_from_db()
    assert run.cancel_requested_at is None


@pytest.mark.parametrize("suffix", ["", "transcript.txt", "transcript.cast", "transcript.txt?escapes=1"])
def test_an_outsider_gets_not_found_for_every_run_page(cast, login, suffix):
    run = _with_output(_run(cast), b"secret output")
    answer = login(cast.outsider).get(f"/runs/{run.pk}/{suffix}")
    assert answer.status_code == 404
    assert b"secret output" not in answer.content


def test_an_outsider_cannot_cancel(cast, login):
    run = _run(cast, status=RunStatus.RUNNING)
    assert login(cast.outsider).post(f"/runs/{run.pk}/cancel/").status_code == 404
    run.refresh_from_db()
    assert run.cancel_requested_at is None


def test_the_history_never_lists_other_accounts_runs(cast, login):
    _run(cast, command="echo staging-only")
    page = login(cast.outsider).get("/runs/").content.decode()
    assert "echo staging-only" not in page
    assert 'id="runs-empty"' in page


def test_a_viewer_may_watch_but_not_cancel_or_download(cast, login):
    run = _with_output(_run(cast, status=RunStatus.RUNNING), b"hello")
    client = login(cast.viewer)
    page = client.get(f"/runs/{run.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="run-terminal"' in html and f'data-socket="/ws/runs/{run.pk}/"' in html
    assert 'id="run-cancel"' not in html and "transcript.txt" not in html and "data-cast-url" not in html
    assert client.post(f"/runs/{run.pk}/cancel/").status_code == 403
    assert client.get(f"/runs/{run.pk}/transcript.txt").status_code == 403
    assert client.get(f"/runs/{run.pk}/transcript.cast").status_code == 403
    run.refresh_from_db()
    assert run.cancel_requested_at is None


def test_a_viewer_is_told_the_form_needs_the_operator_role(cast, login):
    page = login(cast.viewer).get("/runs/new/").content.decode()
    assert 'id="run-no-accounts"' in page
    assert 'id="run-form"' not in page


def test_a_viewer_posting_the_form_is_refused_with_a_reason(cast, login, local_aws):
    answer = login(cast.viewer).post(
        "/runs/new/",
        {
            "account": cast.staging.pk,
            "region": "eu-west-1",
            "cluster": "staging",
            "task": _staging_task(),
            "container": "app",
            "command": "id",
        },
    )
    assert answer.status_code == 403  # operator nowhere: refused before the form is read, as /stops/new/ does
    assert "operator" in answer.content.decode()
    assert not Run.objects.exists()


def test_an_outsider_posting_another_accounts_target_gets_not_found(cast, login, local_aws):
    fields = {
        "account": cast.staging.pk,
        "region": "eu-west-1",
        "cluster": "staging",
        "task": "abc",
        "container": "app",
    }
    answer = login(cast.outsider).post("/runs/new/", {**fields, "command": "id"})
    assert answer.status_code == 404
    assert not Run.objects.exists()


# --- the form (operator)


def test_the_form_embeds_the_picker_limited_to_operator_accounts(cast, login, local_aws):
    page = login(cast.operator).get("/runs/new/").content.decode()
    assert 'id="picker"' in page and 'hx-get="/runs/pick/"' in page
    assert "Acme Staging" in page and "Other Team" not in page


def test_the_picker_shows_the_containers_exec_readiness_and_the_allowed_roles(cast, login, local_aws):
    task = _staging_task()
    query = f"account={cast.staging.pk}&region=eu-west-1&cluster=staging&task={task}&container=app"
    fragment = login(cast.operator).get(f"/runs/pick/?{query}", HTTP_HX_REQUEST="true").content.decode()
    assert "exec ready" in fragment
    assert 'id="run-role"' in fragment and 'hx-swap-oob="true"' in fragment
    assert cast.staging.allowed_role_arns[0] in fragment


def test_submitting_starts_a_run_and_opens_its_page(cast, login, local_aws):
    task = _staging_task()
    answer = login(cast.operator).post(
        "/runs/new/",
        {
            "account": cast.staging.pk,
            "region": "eu-west-1",
            "cluster": "staging",
            "task": task,
            "container": "app",
            "command": "echo hello; exit 3",
        },
    )
    run = Run.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/runs/{run.pk}/"
    assert (run.status, run.command, run.mode, run.container) == (
        RunStatus.QUEUED,
        "echo hello; exit 3",
        "shell",
        "app",
    )
    assert run.task_arn.endswith("/" + task) and run.requested_by == cast.operator


def test_raw_mode_is_passed_on(cast, login, local_aws):
    fields = {"account": cast.staging.pk, "region": "eu-west-1", "cluster": "staging", "task": _staging_task()}
    login(cast.operator).post("/runs/new/", {**fields, "container": "app", "command": "ls /", "raw": "on"})
    assert Run.objects.get().mode == RunMode.RAW


def test_a_refusal_is_a_form_error_that_keeps_what_was_typed(cast, login, local_aws):
    fields = {"account": cast.staging.pk, "region": "eu-west-1", "cluster": "staging", "task": _staging_task()}
    answer = login(cast.operator).post("/runs/new/", {**fields, "container": "nope", "command": "echo kept-<b>"})
    html = answer.content.decode()
    assert answer.status_code == 422
    assert 'id="run-form-error"' in html and "has no container named nope" in html
    assert "echo kept-&lt;b&gt;" in html
    assert not Run.objects.exists()


def test_a_missing_command_and_target_are_field_errors(cast, login, local_aws):
    answer = login(cast.operator).post("/runs/new/", {"account": cast.staging.pk, "command": "  "})
    html = answer.content.decode()
    assert answer.status_code == 422
    assert "Type the command to run." in html and "Choose a cluster." in html
    assert not Run.objects.exists()


def test_a_production_account_sends_the_run_for_approval_and_the_page_links_it(cast, login, local_aws):
    config = cast.prod.aws_config()
    arns = ecs.list_task_arns(config, "eu-west-1", "prod-web")
    task = next(
        t for t in ecs.describe_tasks(config, "eu-west-1", "prod-web", arns) if t.task_definition.startswith("web:")
    )
    client = login(cast.operator)
    fields = {
        "account": cast.prod.pk,
        "region": "eu-west-1",
        "cluster": "prod-web",
        "task": task.id,
        "container": "app",
    }
    refused = client.post("/runs/new/", {**fields, "command": "uptime"})
    assert refused.status_code == 422 and "say why" in refused.content.decode()
    answer = client.post("/runs/new/", {**fields, "command": "uptime", "reason": "check load"})
    run = Run.objects.get()
    assert run.status == RunStatus.AWAITING_APPROVAL and run.approval is not None
    html = client.get(answer["Location"]).content.decode()
    assert f'href="/approvals/{run.approval.pk}/"' in html and 'id="run-approval"' in html


# --- the run page


def test_the_run_page_shows_who_ran_what_where(cast, login):
    run = _run(cast, status=RunStatus.FAILED, exit_code=3, bytes_out=2048, end_reason="exited with 3")
    html = login(cast.operator).get(f"/runs/{run.pk}/").content.decode()
    assert f'id="run-exit-code-{run.pk}">3<' in html
    assert "exited with 3" in html and "2.0\xa0KB" in html and ">operator</bdi> " in html
    assert f'href="/inventory/{cast.staging.pk}/eu-west-1/staging/tasks/0123456789abcdef/"' in html
    assert 'id="run-cancel"' not in html  # finished


def test_an_unknown_exit_code_is_said_plainly(cast, login):
    run = _run(cast, status=RunStatus.COMPLETED, exit_code=None, mode=RunMode.RAW)
    html = login(cast.operator).get(f"/runs/{run.pk}/").content.decode()
    assert "exit code unknown (raw mode)" in html


def test_a_raw_mode_run_is_neither_a_success_nor_a_failure_on_its_page(cast, login):
    run = _run(cast, status=RunStatus.COMPLETED, mode=RunMode.RAW, end_reason="Raw mode reports no exit code.")
    html = login(cast.operator).get(f"/runs/{run.pk}/").content.decode()
    badge = re.search(r'<span class="badge run-status ([^"]+)" data-status="completed">([^<]+)</span>', html)
    assert badge is not None and badge.group(2) == "Completed"
    assert "success" not in badge.group(1) and "danger" not in badge.group(1)
    alert = re.search(r'<div class="alert ([^"]+)" id="run-end-reason">', html)
    assert alert is not None and "success" not in alert.group(1) and "danger" not in alert.group(1)
    assert "Succeeded" not in html


def test_a_raw_mode_run_is_completed_in_the_history_and_on_home(cast, login):
    _run(cast, status=RunStatus.COMPLETED, mode=RunMode.RAW)
    client = login(cast.operator)
    history = client.get("/runs/").content.decode()
    rows = history[history.index('id="run-results"') :]
    home = client.get("/").content.decode()
    runs_panel = home[home.index('id="home-runs"') :]
    assert 'data-status="completed">Completed<' in rows and "Succeeded" not in rows
    assert 'class="badge run-completed">Completed<' in runs_panel and "Succeeded" not in runs_panel
    filtered = client.get("/runs/?status=completed").content.decode()
    assert "1 run<" in filtered


def test_the_page_never_puts_container_output_into_html(cast, login):
    run = _with_output(_run(cast), HOSTILE)
    html = login(cast.operator).get(f"/runs/{run.pk}/").content.decode()
    assert "alert(1)" not in html and "onerror" not in html


def test_the_run_page_allows_only_its_own_nonce_for_styles(cast, login):
    run = _run(cast)
    answer = login(cast.viewer).get(f"/runs/{run.pk}/")
    nonce = re.search(r'data-style-nonce="([^"]+)"', answer.content.decode()).group(1)
    policy = dict(part.strip().split(" ", 1) for part in answer["Content-Security-Policy"].split(";"))
    assert policy["style-src"] == f"'self' 'nonce-{nonce}'"
    assert policy["script-src"] == "'self'" and "unsafe-inline" not in answer["Content-Security-Policy"]
    again = login(cast.viewer).get(f"/runs/{run.pk}/")
    assert nonce not in again["Content-Security-Policy"]  # one per response


def test_other_pages_keep_the_strict_policy(cast, login):
    assert "nonce-" not in login(cast.viewer).get("/runs/")["Content-Security-Policy"]


def test_htmx_refresh_renders_only_the_facts(cast, login):
    run = _run(cast, status=RunStatus.RUNNING)
    html = login(cast.operator).get(f"/runs/{run.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert '<section id="run-facts"' in html
    assert "<html" not in html and 'id="run-cancel"' in html


def test_an_operator_cancels_a_queued_run(cast, login):
    run = _run(cast, status=RunStatus.QUEUED)
    answer = login(cast.operator).post(f"/runs/{run.pk}/cancel/")
    assert answer.status_code == 302 and answer["Location"] == f"/runs/{run.pk}/"
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.cancelled_by == cast.operator


def test_cancelling_a_finished_run_says_why_not(cast, login):
    run = _run(cast, status=RunStatus.SUCCEEDED)
    client = login(cast.operator)
    page = client.post(f"/runs/{run.pk}/cancel/", follow=True).content.decode()
    assert "already ended" in page


def test_cancel_needs_post(cast, login):
    run = _run(cast, status=RunStatus.RUNNING)
    assert login(cast.operator).get(f"/runs/{run.pk}/cancel/").status_code == 405


# --- downloads


def test_the_text_download_strips_escapes_and_is_plain_text(cast, login):
    run = _with_output(_run(cast), b"\x1b[1;32mhello\x1b[0m\r\n", HOSTILE)
    answer = login(cast.operator).get(f"/runs/{run.pk}/transcript.txt")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "text/plain; charset=utf-8"
    assert answer["X-Content-Type-Options"] == "nosniff"
    assert answer["Content-Disposition"] == f'attachment; filename="run-{run.pk}.txt"'
    assert answer.content.decode() == "hello\n<script>alert(1)</script>\n<img src=x onerror=alert(1)>\n"
    event = AuditEvent.objects.get(action="run.transcript_downloaded")
    assert event.details == {"run": run.pk, "format": "text"} and event.actor == cast.operator


def test_the_escapes_download_is_the_bytes_as_sent(cast, login):
    run = _with_output(_run(cast), b"\x1b[1;32mhello\x1b[0m\r\n", b"\xff")
    answer = login(cast.operator).get(f"/runs/{run.pk}/transcript.txt?escapes=1")
    assert answer.content == b"\x1b[1;32mhello\x1b[0m\r\n\xff"
    assert answer["Content-Type"] == "text/plain; charset=utf-8"
    assert AuditEvent.objects.get(action="run.transcript_downloaded").details["format"] == "text-escapes"


def test_the_asciicast_download_is_v2_with_increasing_times(cast, login):
    run = _with_output(_run(cast, command="echo hello; exit 3", cols=100, rows=30), b"hello\r\n", b"done\r\n", HOSTILE)
    answer = login(cast.operator).get(f"/runs/{run.pk}/transcript.cast")
    lines = [json.loads(line) for line in answer.content.decode().splitlines()]
    header, events = lines[0], lines[1:]
    assert header["version"] == 2 and (header["width"], header["height"]) == (100, 30)
    assert header["command"] == "echo hello; exit 3" and header["timestamp"] == int(run.started_at.timestamp())
    assert [e[2] for e in events] == ["hello\r\n", "done\r\n", HOSTILE.decode()]
    times = [e[0] for e in events]
    assert all(e[1] == "o" for e in events) and times == sorted(times) and len(set(times)) == 3
    assert answer["X-Content-Type-Options"] == "nosniff"
    assert AuditEvent.objects.get(action="run.transcript_downloaded").details["format"] == "asciicast"


def test_a_run_without_output_downloads_empty(cast, login):
    run = _run(cast)
    assert login(cast.operator).get(f"/runs/{run.pk}/transcript.txt").content == b""
    lines = login(cast.operator).get(f"/runs/{run.pk}/transcript.cast").content.decode().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["version"] == 2


# --- the history


def test_the_history_lists_runs_newest_first_with_status_and_exit_code(cast, login):
    older = _run(cast, command="echo older", status=RunStatus.FAILED, exit_code=3)
    newer = _run(cast, command="echo newer", status=RunStatus.RUNNING)
    html = login(cast.viewer).get("/runs/").content.decode()
    assert html.index(f'data-run="{newer.pk}"') < html.index(f'data-run="{older.pk}"')
    assert "Running" in html and f'id="run-exit-code-{older.pk}">3<' in html


def test_the_history_has_an_empty_state(cast, login):
    html = login(cast.operator).get("/runs/").content.decode()
    assert 'id="runs-empty"' in html and "No commands have been run yet" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("account={prod}", {"prod-run"}),
        ("cluster=staging-eu", {"eu-run"}),
        ("user=admin", {"admin-run", "failed-run"}),
        ("status=failed", {"failed-run"}),
        ("status=failed&user=operator", set()),
    ],
)
def test_the_history_filters(cast, login, query, expected):
    _run(cast, command="echo prod-run", account=cast.prod, cluster="prod-web")
    _run(cast, command="echo eu-run", cluster="staging-eu")
    _run(cast, command="echo admin-run", user=cast.admin)
    _run(cast, command="echo failed-run", user=cast.admin, status=RunStatus.FAILED, exit_code=1)
    html = login(cast.operator).get("/runs/?" + query.format(prod=cast.prod.pk)).content.decode()
    shown = set(re.findall(r"echo ([a-z-]+-run)", html))
    assert shown == expected
    if not expected:
        assert "No runs match these filters." in html


def test_the_history_pages_with_htmx_and_keeps_the_filters(cast, login):
    for n in range(30):
        _run(cast, command=f"echo n{n:02d}", status=RunStatus.FAILED, exit_code=1)
    _run(cast, command="echo not-failed")
    client = login(cast.viewer)
    first = client.get("/runs/?status=failed").content.decode()
    assert 'href="?status=failed&amp;page=2"' in first and 'hx-get="/runs/?status=failed&amp;page=2"' in first
    second = client.get("/runs/?status=failed&page=2", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in second
    assert set(re.findall(r"echo (n\d\d)", second)) == {f"n{n:02d}" for n in range(5)}
    assert "page 2 of 2" in second and "not-failed" not in second


# --- the inventory's Run command buttons


def test_exec_ready_containers_have_a_run_button_for_operators_only(cast, login, local_aws):
    task = _staging_task()
    url = f"/inventory/{cast.staging.pk}/eu-west-1/staging/tasks/{task}/"
    html = login(cast.operator).get(url).content.decode()
    assert (
        f"/runs/new/?account={cast.staging.pk}&amp;region=eu-west-1&amp;cluster=staging&amp;task={task}&amp;container=app"
        in html
    )
    assert "run-button" not in login(cast.viewer).get(url).content.decode()


@pytest.mark.parametrize("field", ["command", "reason"])
def test_text_direction_controls_in_a_command_or_reason_are_refused(cast, login, local_aws, field):
    fields = {"account": cast.staging.pk, "region": "eu-west-1", "cluster": "staging", "task": _staging_task()}
    values = {"container": "app", "command": "echo ok", "reason": "", field: "echo \u202egnp.exe"}
    answer = login(cast.operator).post("/runs/new/", {**fields, **values})
    assert answer.status_code == 422
    assert "U+202E" in answer.content.decode()
    assert not Run.objects.exists()


def test_only_the_requester_is_offered_to_withdraw_a_run_waiting_for_approval(cast, login):
    run = _run(cast, account=cast.prod, status=RunStatus.AWAITING_APPROVAL, started_at=None)
    assert 'id="run-cancel"' in login(cast.operator).get(f"/runs/{run.pk}/").content.decode()
    assert 'id="run-cancel"' not in login(cast.approver).get(f"/runs/{run.pk}/").content.decode()


# --- the form over htmx


def test_an_htmx_post_with_an_error_gets_the_form_back_alone_keeping_what_was_typed(cast, login, local_aws):
    fields = {"account": cast.staging.pk, "region": "eu-west-1", "cluster": "staging", "task": _staging_task()}
    answer = login(cast.operator).post(
        "/runs/new/", {**fields, "container": "nope", "command": "echo kept-<b>", "raw": "on"}, HTTP_HX_REQUEST="true"
    )
    html = answer.content.decode()
    assert answer.status_code == 422
    assert html.lstrip().startswith("<form") and "<!doctype" not in html
    assert 'id="run-form"' in html and 'hx-post="/runs/new/"' in html
    assert "has no container named nope" in html and "echo kept-&lt;b&gt;" in html
    assert 'id="run-raw" value="on" checked' in html and 'value="staging" selected' in html
    assert not Run.objects.exists()


def test_an_htmx_post_that_starts_a_run_redirects_the_browser_to_it(cast, login, local_aws):
    fields = {"account": cast.staging.pk, "region": "eu-west-1", "cluster": "staging", "task": _staging_task()}
    answer = login(cast.operator).post(
        "/runs/new/", {**fields, "container": "app", "command": "id"}, HTTP_HX_REQUEST="true"
    )
    run = Run.objects.get()
    assert answer.status_code == 200 and answer["HX-Redirect"] == f"/runs/{run.pk}/"


def test_the_reason_says_it_is_required_as_soon_as_a_production_account_is_picked(cast, login, local_aws):
    client = login(cast.operator)
    prod = client.get(f"/runs/pick/?account={cast.prod.pk}", HTTP_HX_REQUEST="true").content.decode()
    staging = client.get(f"/runs/pick/?account={cast.staging.pk}", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="run-reason-label" hx-swap-oob="true"' in prod and "(required)" in prod
    assert "need 1 approval: say why" in prod
    assert "(required)" not in staging and "(optional)" in staging
    page = client.get(f"/runs/new/?account={cast.prod.pk}").content.decode()
    assert "(required)" in page and 'aria-describedby="run-reason-help"' in page


# --- reading a run at 3 a.m.


def test_a_long_command_is_readable_whole_on_the_run_page(cast, login):
    command = "for i in $(seq 1 5); do echo " + "x" * 300 + "; done # <end>"
    run = _run(cast, command=command)
    html = login(cast.viewer).get(f"/runs/{run.pk}/").content.decode()
    escaped = command.replace("<", "&lt;").replace(">", "&gt;")
    assert f'title="{escaped}"' in html  # the cut title's tooltip
    assert f'id="run-command"><bdi>{escaped}</bdi>' in html  # the Command row, whole


def test_run_again_posts_the_same_command_and_edit_opens_the_form_filled_in(cast, login, local_aws):
    task = _staging_task()
    run = _run(cast, task_arn=TASK_ARN.replace("0123456789abcdef", task), command="df -h | sort", mode=RunMode.RAW)
    client = login(cast.operator)
    html = client.get(f"/runs/{run.pk}/").content.decode()
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', html))
    fields.pop("csrfmiddlewaretoken")
    assert fields == {
        "account": str(cast.staging.pk),
        "region": "eu-west-1",
        "cluster": "staging",
        "task": task,
        "container": "app",
        "role_arn": "",
        "command": "df -h | sort",
        "raw": "on",
    }
    answer = client.post("/runs/new/", fields)
    again = Run.objects.exclude(pk=run.pk).get()
    assert answer["Location"] == f"/runs/{again.pk}/"
    assert (again.command, again.mode, again.task_id, again.container) == ("df -h | sort", "raw", task, "app")

    edit = re.search(r'id="run-edit-again" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    form = client.get(edit).content.decode()
    assert ">df -h | sort</textarea>" in form and 'id="run-raw" value="on" checked' in form
    assert f'value="{task}" selected' in form and 'value="app" selected' in form


def test_a_runbooks_run_and_a_viewer_get_no_run_again(cast, login):
    from_runbook = _run(cast, runbook_name="Tail a log", command="tail -n 5 ******")
    plain = _run(cast)
    assert 'id="run-again"' not in login(cast.operator).get(f"/runs/{from_runbook.pk}/").content.decode()
    assert 'id="run-again"' not in login(cast.viewer).get(f"/runs/{plain.pk}/").content.decode()


def test_a_running_run_gives_the_page_its_elapsed_time_to_count_on(cast, login):
    started = timezone.now() - timezone.timedelta(seconds=42)
    running = _run(cast, status=RunStatus.RUNNING, started_at=started)
    done = _run(cast, started_at=started, ended_at=started + timezone.timedelta(seconds=3))
    client = login(cast.viewer)
    live = client.get(f"/runs/{running.pk}/").content.decode()
    ticking = re.search(r'id="run-duration" data-elapsed="([\d.]+)" data-ticking="1"', live)
    assert ticking is not None and 42 <= float(ticking.group(1)) < 60
    ended = client.get(f"/runs/{done.pk}/").content.decode()
    assert 'id="run-duration" data-elapsed="3.0" data-ticking="0">3.0 s<' in ended


def test_status_and_exit_code_come_before_the_terminal_and_follow_each_refresh(cast, login):
    run = _run(cast, status=RunStatus.FAILED, exit_code=7)
    client = login(cast.viewer)
    html = client.get(f"/runs/{run.pk}/").content.decode()
    assert html.index('id="run-strip"') < html.index('id="run-terminal"') < html.index('id="run-facts"')
    strip = html[html.index('id="run-strip"') : html.index('id="run-terminal"')]
    assert 'data-status="failed">Failed<' in strip and ">7</span>" in strip and "d-xl-none" in strip
    assert 'hx-swap-oob="true"' not in strip
    fragment = client.get(f"/runs/{run.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="run-strip"' in fragment and 'hx-swap-oob="true"' in fragment
    assert fragment.count(f'id="run-exit-code-{run.pk}"') == 1  # ids stay unique


def test_the_page_says_where_output_past_the_scrollback_is(cast, login):
    run = _run(cast)
    operator = login(cast.operator).get(f"/runs/{run.pk}/").content.decode()
    assert 'id="run-scrollback-note"' in operator and "Only the last 20,000 lines are shown here" in operator
    assert f'href="/runs/{run.pk}/transcript.txt" download' in operator
    assert f'data-find-url="/runs/{run.pk}/transcript.txt?inline=1&amp;purpose=find"' in operator
    viewer = login(cast.viewer).get(f"/runs/{run.pk}/").content.decode()
    assert "which operators of this account can download" in viewer and "data-find-url" not in viewer


def test_finds_fetch_of_the_transcript_is_audited_as_such(cast, login):
    run = _with_output(_run(cast), b"one\r\n", b"two\r\n")
    answer = login(cast.operator).get(f"/runs/{run.pk}/transcript.txt?inline=1&purpose=find")
    assert answer.content == b"one\ntwo\n"
    assert AuditEvent.objects.get(action="run.transcript_downloaded").details["format"] == "text-find"
