"""The pages, filters, exports and access rules, on rows written straight into history."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from ecsportal.audit.models import AuditEvent
from ecsportal.stopped.models import ClusterCollection, CollectionRun
from tests.stopped.helpers import row

pytestmark = pytest.mark.django_db


def exported(client, query: str = "") -> set[str]:
    answer = client.get(f"/stopped/export.json?{query}")
    assert answer.status_code == 200
    return {r["task_arn"] for r in json.loads(b"".join(answer.streaming_content))}


@pytest.fixture
def estate(cast):
    """A small, varied history across the cast's three accounts."""
    return {
        "oom": row(cast.prod, containers=(("app", 137, "OutOfMemoryError: Container killed due to memory usage"),)),
        "oom2": row(cast.prod, minutes_ago=50, containers=(("app", 137, "OutOfMemoryError: Container killed due to memory usage"),)),
        "batch": row(cast.prod, cluster="prod-batch", service="", family="report", containers=(("report", 139, ""),)),
        "deploy": row(cast.prod, stop_code="ServiceSchedulerInitiated", minutes_ago=120,
                      reason="Scaling activity initiated by (deployment ecs-svc/1234567890123456)",
                      containers=(("app", 143, ""),)),
        "edge": row(cast.prod, region="us-east-1", cluster="prod-edge", service="api", family="api",
                    stop_code="TaskFailedToStart", reason="CannotPullContainerError: pull failed for acme/api:1",
                    containers=(("api", None, ""),)),
        "old": row(cast.prod, minutes_ago=60 * 24 * 3),
        "staging": row(cast.staging, cluster="staging", service="worker", family="worker",
                       containers=(("worker", 137, "OutOfMemoryError: Container killed due to memory usage"),)),
        "other": row(cast.other, cluster="other-web", containers=(("app", 1, ""),)),
    }  # fmt: skip


def arns(estate, *names: str) -> set[str]:
    return {estate[n].task_arn for n in names}


@pytest.mark.parametrize(
    "url", ["/stopped/", "/stopped/1/", "/stopped/export.csv", "/stopped/export.json", "/stopped/status/"]
)
def test_anonymous_users_are_sent_to_log_in(client, url):
    answer = client.get(url)
    assert answer.status_code == 302 and answer["Location"].startswith("/login/")


def test_anonymous_users_cannot_refresh(client, db):
    answer = client.post("/stopped/refresh/")
    assert answer.status_code == 302 and not CollectionRun.objects.exists()


@pytest.mark.parametrize("username", ["viewer", "operator", "approver", "admin"])
def test_each_role_sees_the_stopped_tasks_of_its_accounts_and_no_others(cast, estate, login, username):
    client = login(getattr(cast, username))
    assert client.get("/stopped/").status_code == 200
    visible = exported(client, "range=all")
    own = arns(estate, "oom", "oom2", "batch", "deploy", "edge", "old", "staging")
    if username == "admin":  # superuser: every account
        assert visible == own | arns(estate, "other")
    else:
        assert visible == own


def test_an_outsider_sees_only_its_own_account(cast, estate, login):
    client = login(cast.outsider)
    assert exported(client, "range=all") == arns(estate, "other")
    html = client.get("/stopped/?range=all").content.decode()
    assert "other-web" in html and "prod-web" not in html and "Acme" not in html


def test_a_user_without_accounts_sees_nothing(estate, login):
    nobody = get_user_model().objects.create_user("nobody", password="x")
    assert exported(login(nobody), "range=all") == set()


def test_the_detail_of_another_account_s_task_is_not_found(cast, estate, login):
    assert login(cast.outsider).get(f"/stopped/{estate['oom'].pk}/").status_code == 404
    assert login(cast.viewer).get(f"/stopped/{estate['other'].pk}/").status_code == 404
    assert login(cast.viewer).get("/stopped/999999/").status_code == 404


def test_the_detail_explains_the_task(cast, estate, login):
    html = login(cast.viewer).get(f"/stopped/{estate['oom'].pk}/").content.decode()
    assert "Out of memory" in html and "First things to check" in html
    assert "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/out-of-memory.html" in html
    assert "SIGKILL" in html  # exit code 137 explained
    assert "2 tasks with the same signature" in html


def _href(html: str, element_id: str) -> str | None:
    found = re.search(rf'id="{element_id}"[^>]*href="([^"]+)"', html)
    return found[1].replace("&amp;", "&") if found else None


def test_the_detail_links_cluster_service_and_task_to_the_inventory(cast, estate, login):
    task = estate["oom"]
    html = login(cast.viewer).get(f"/stopped/{task.pk}/").content.decode()
    cluster = f"/inventory/{cast.prod.pk}/eu-west-1/prod-web/"
    assert _href(html, "live-cluster") == cluster
    assert _href(html, "live-service") == cluster + "?service=web"
    assert _href(html, "live-task") == f"{cluster}tasks/{task.task_id}/"
    assert _href(html, "run-on-service") is None  # a viewer may not run commands
    assert _href(html, "approval-link") is None  # not stopped through the portal


def test_an_operator_is_offered_a_command_on_a_live_task_of_the_service(cast, estate, login):
    html = login(cast.operator).get(f"/stopped/{estate['oom'].pk}/").content.decode()
    assert _href(html, "run-on-service") == f"/runs/new/?account={cast.prod.pk}&region=eu-west-1&cluster=prod-web"


def test_a_standalone_task_has_no_service_link_and_no_run_offer(cast, estate, login):
    html = login(cast.operator).get(f"/stopped/{estate['batch'].pk}/").content.decode()
    assert _href(html, "live-cluster") and not _href(html, "live-service") and not _href(html, "run-on-service")
    assert "standalone task" in html


def test_a_task_the_portal_stopped_links_to_its_approval_request(cast, login):
    stopped = row(cast.prod, stop_code="UserInitiated", containers=(("app", 143, ""),),
                  reason="ecsportal #42: runaway memory (requested by operator, approved by approver)")  # fmt: skip
    html = login(cast.viewer).get(f"/stopped/{stopped.pk}/").content.decode()
    assert "Stopped through ecsportal" in html
    assert _href(html, "approval-link") == "/approvals/42/"


def test_a_disabled_account_s_task_links_nowhere_the_inventory_would_refuse(cast, estate, login):
    cast.prod.is_enabled = False
    cast.prod.save()
    html = login(cast.operator).get(f"/stopped/{estate['oom'].pk}/").content.decode()
    assert not any(_href(html, i) for i in ("live-cluster", "live-service", "live-task", "run-on-service"))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["oom", "oom2", "batch", "deploy", "edge", "staging"]),  # last 24 h by default
        ("range=all", ["oom", "oom2", "batch", "deploy", "edge", "old", "staging"]),
        ("range=1h", ["oom", "oom2", "batch", "edge", "staging"]),
        ("account={staging}", ["staging"]),
        ("region=us-east-1", ["edge"]),
        ("cluster=prod-batch", ["batch"]),
        ("service=web", ["oom", "oom2", "deploy"]),
        ("category=out-of-memory", ["oom", "oom2", "staging"]),
        ("category=exit-139", ["batch"]),
        ("stop_code=TaskFailedToStart", ["edge"]),
        ("q=acme/api", ["edge"]),
        ("q=OUTOFMEMORY&service=worker", ["staging"]),
        ("category=out-of-memory&account={prod}", ["oom", "oom2"]),
        ("account={other}", []),  # not the viewer's account: nothing, not an error
        ("category=no-such-thing", ["oom", "oom2", "batch", "deploy", "edge", "staging"]),  # a bad value is dropped
    ],
)
def test_filters_return_exactly_the_matching_rows(cast, estate, login, query, expected):
    query = query.format(prod=cast.prod.pk, staging=cast.staging.pk, other=cast.other.pk)
    assert exported(login(cast.viewer), query) == arns(estate, *expected)


@pytest.mark.parametrize(
    ("query", "control", "shown"),
    [
        ("account=999", "f-account", '<option value="999" selected>#999: not one of your accounts</option>'),
        ("region=mars-1", "f-region", "<option selected>mars-1</option>"),
        ("stop_code=x", "f-stop-code", "<option selected>x</option>"),
    ],
)
def test_a_filter_that_matches_nothing_is_shown_in_its_control_not_as_all(cast, estate, login, query, control, shown):
    client = login(cast.viewer)
    html = client.get(f"/stopped/?{query}&range=all").content.decode()
    select = html[html.index(f'id="{control}"') :]
    select = select[: select.index("</select>")]
    assert shown in select
    assert select.count(" selected") == 1  # not also "All …"
    assert "No stopped tasks match these filters." in html
    assert exported(client, f"{query}&range=all") == set()  # the export applies the same filter


def test_the_signature_filter_returns_the_rows_of_one_signature(cast, estate, login):
    assert estate["oom"].signature == estate["oom2"].signature != estate["staging"].signature
    assert exported(login(cast.viewer), f"signature={estate['oom'].signature}") == arns(estate, "oom", "oom2")


def test_the_page_and_the_csv_export_show_the_same_rows(cast, estate, login):
    client = login(cast.viewer)
    answer = client.get("/stopped/export.csv?category=out-of-memory")
    lines = list(csv.DictReader(io.StringIO(b"".join(answer.streaming_content).decode())))
    assert {r["task_arn"] for r in lines} == arns(estate, "oom", "oom2", "staging")
    assert answer["Content-Disposition"].startswith("attachment;")
    oom = next(r for r in lines if r["task_arn"] == estate["oom"].task_arn)
    assert oom["containers"] == "app: exit 137 (OutOfMemoryError: Container killed due to memory usage)"
    assert (oom["account"], oom["cluster"], oom["category"]) == ("Acme Production", "prod-web", "out-of-memory")
    html = client.get("/stopped/?category=out-of-memory").content.decode()
    for name in ("oom", "oom2", "staging"):
        assert f'data-task-id="{estate[name].task_id}"' in html
    assert f'data-task-id="{estate["batch"].task_id}"' not in html


def test_csv_cells_cannot_become_spreadsheet_formulas(cast, login):
    row(cast.prod, stop_code="UserInitiated", reason='=HYPERLINK("http://evil")')
    body = b"".join(login(cast.viewer).get("/stopped/export.csv").streaming_content).decode()
    assert "'=HYPERLINK" in body


def test_sorting_orders_the_rows(cast, estate, login):
    client = login(cast.viewer)
    html = client.get("/stopped/?sort=cluster&range=all").content.decode()
    order = [estate[n].task_id for n in ("batch", "edge", "oom", "staging")]
    positions = [html.index(f'data-task-id="{t}"') for t in order]
    assert positions == sorted(positions)
    html = client.get("/stopped/?sort=-cluster&range=all").content.decode()
    positions = [html.index(f'data-task-id="{t}"') for t in order]
    assert positions == sorted(positions, reverse=True)


def test_paging_walks_every_row_once(cast, login):
    made = {row(cast.prod, minutes_ago=i).task_id for i in range(1, 121)}
    client = login(cast.viewer)
    seen: list[str] = []
    for page in (1, 2, 3):
        html = client.get(f"/stopped/?page={page}").content.decode()
        seen += [t for t in made if f'data-task-id="{t}"' in html]
    assert len(seen) == 120 and set(seen) == made
    assert "Page 3 of 3" in client.get("/stopped/?page=99").content.decode()  # past the end: the last page


def test_past_the_count_cap_the_page_says_plus_and_pages_on(cast, login, monkeypatch):
    from ecsportal.stopped import selectors

    monkeypatch.setattr(selectors, "COUNT_CAP", 60)
    for i in range(1, 121):
        row(cast.prod, minutes_ago=i)
    client = login(cast.viewer)
    html = client.get("/stopped/").content.decode()
    assert "60+ stopped tasks" in html and "Page 1<" in html and 'rel="next"' in html
    html = client.get("/stopped/?page=3").content.decode()
    assert "showing 101–120" in html


def test_htmx_filter_requests_get_only_the_results_fragment(cast, estate, login):
    answer = login(cast.viewer).get("/stopped/?category=exit-139", HTTP_HX_REQUEST="true")
    html = answer.content.decode()
    assert answer.status_code == 200 and "<html" not in html and 'id="stopped-results"' in html
    assert estate["batch"].task_id in html and estate["oom"].task_id not in html


def test_the_on_call_view_opens_on_signatures_then_the_chart_then_the_table(cast, estate, login):
    html = login(cast.viewer).get("/stopped/").content.decode()
    assert html.index('id="signatures"') < html.index('id="stopped-chart"') < html.index('id="stopped-table"')
    assert html.count('class="signature-row') == 5  # two OOMs of web/app are one signature
    assert html.count('<rect class="bar') >= 3


def test_the_status_shows_which_cluster_failed_and_why(cast, login):
    run = CollectionRun.objects.create(trigger="command", finished_at=timezone.now())
    ClusterCollection.objects.create(
        account=cast.prod,
        region="eu-west-1",
        cluster="prod-web",
        run=run,
        state="ok",
        last_ok_at=timezone.now(),
        tasks_seen=6,
    )
    ClusterCollection.objects.create(
        account=cast.prod,
        region="eu-west-1",
        cluster="prod-batch",
        run=run,
        state="error",
        last_error="Access denied on prod-batch: the role lacks ecs:ListTasks",
        last_error_code="AccessDeniedException",
        last_error_kind="access_denied",
    )
    ClusterCollection.objects.create(account=cast.other, region="eu-west-1", cluster="secret-cluster", run=run,
                                     state="error", last_error="nope", last_error_code="AccessDeniedException")  # fmt: skip
    html = login(cast.viewer).get("/stopped/").content.decode()
    assert "AccessDeniedException on cluster prod-batch" in html and "ecs:ListTasks" in html
    assert "secret-cluster" not in html
    assert "1 of 2 clusters collected" in html


def test_refresh_starts_a_background_run_over_the_user_s_accounts(cast, login, django_capture_on_commit_callbacks):
    client = login(cast.viewer)
    with django_capture_on_commit_callbacks() as callbacks:
        answer = client.post("/stopped/refresh/", HTTP_HX_REQUEST="true")
    assert answer.status_code == 200 and 'hx-trigger="every 1s"' in answer.content.decode()
    run = CollectionRun.objects.get()
    assert run.trigger == "manual" and run.requested_by == cast.viewer
    assert sorted(run.account_pks) == sorted([cast.prod.pk, cast.staging.pk])
    assert len(callbacks) == 1  # the thread starts once the run is committed
    assert AuditEvent.objects.filter(action="stopped.refresh", actor=cast.viewer).exists()
    # a second click joins the run in progress instead of starting another
    with django_capture_on_commit_callbacks() as again:
        client.post("/stopped/refresh/")
    assert CollectionRun.objects.count() == 1 and not again


def test_refresh_is_post_only(cast, login):
    assert login(cast.viewer).get("/stopped/refresh/").status_code == 405


def test_polling_stops_and_results_reload_when_the_run_finishes(cast, login):
    run = CollectionRun.objects.create(trigger="manual")
    client = login(cast.viewer)
    answer = client.get(f"/stopped/status/?run={run.pk}", HTTP_HX_REQUEST="true")
    assert 'hx-trigger="every 1s"' in answer.content.decode() and "HX-Trigger" not in answer
    run.finished_at = datetime.now(UTC)
    run.save()
    answer = client.get(f"/stopped/status/?run={run.pk}", HTTP_HX_REQUEST="true")
    assert 'hx-trigger="every 1s"' not in answer.content.decode()
    assert "stopped-collected" in answer["HX-Trigger"]


def test_reasons_are_escaped(cast, login):
    bad = row(cast.prod, stop_code="UserInitiated", reason="<script>alert(1)</script>")
    client = login(cast.viewer)
    for url in ("/stopped/", f"/stopped/{bad.pk}/"):
        html = client.get(url).content.decode()
        assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


def test_a_running_collection_shows_its_totals_only_to_those_who_see_its_whole_scope(cast, login):
    CollectionRun.objects.create(
        trigger="manual", account_pks=[cast.prod.pk, cast.other.pk], clusters_total=42, tasks_seen=1234
    )
    outsider = login(cast.outsider).get("/stopped/status/").content.decode()
    # Whole words only: the page's random CSRF token may hold "42" by chance.
    assert "Collecting…" in outsider and not re.search(r"\b(42|1234)\b", outsider)
    admin = login(cast.admin).get("/stopped/status/").content.decode()
    assert "of 42 clusters done" in admin and "1234 stopped tasks seen" in admin
