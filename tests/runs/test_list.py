"""The run history at scale: a capped count, paging past it, filter menus read from indexes."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.utils import timezone

from ecsportal.runs import views
from ecsportal.runs.models import Run, RunMode, RunStatus
from ecsportal.runs.templatetags import run_list

pytestmark = pytest.mark.django_db


def _runs(account, user, count: int, *, cluster: str = "staging", status: str = RunStatus.SUCCEEDED) -> None:
    Run.objects.bulk_create(
        Run(
            account=account,
            region="eu-west-1",
            cluster=cluster,
            task_arn=f"arn:aws:ecs:eu-west-1:{account.account_id}:task/{cluster}/{n:032x}",
            container="app",
            command=f"echo r{n:03d}",
            requested_by=user,
            status=status,
            started_at=timezone.now(),
        )
        for n in range(count)
    )


def _options(html: str, select_id: str) -> list[str]:
    select = re.search(rf'<select[^>]*id="{select_id}".*?</select>', html, re.S).group(0)
    return [text for text in re.findall(r"<option[^>]*>([^<]*)</option>", select) if text]


def test_past_the_cap_the_history_says_plus_instead_of_counting(cast, login, monkeypatch):
    monkeypatch.setattr(views, "COUNT_CAP", 30)
    _runs(cast.staging, cast.operator, 60)
    html = login(cast.viewer).get("/runs/").content.decode()
    assert "30+ runs" in html and "60 runs" not in html
    assert "page 1<" in html and "page 1 of" not in html and 'rel="next"' in html


def test_within_the_cap_the_history_counts_exactly(cast, login):
    _runs(cast.staging, cast.operator, 30)
    html = login(cast.viewer).get("/runs/").content.decode()
    assert "30 runs" in html and "page 1 of 2" in html


def test_paging_goes_on_past_the_cap_to_the_last_row_and_no_further(cast, login, monkeypatch):
    monkeypatch.setattr(views, "COUNT_CAP", 30)
    _runs(cast.staging, cast.operator, 60)
    client = login(cast.viewer)
    seen: list[str] = []
    for page in (1, 2, 3):
        html = client.get(f"/runs/?page={page}").content.decode()
        seen += re.findall(r'data-run="(\d+)"', html)
    assert len(seen) == 60 and {int(pk) for pk in seen} == set(Run.objects.values_list("pk", flat=True))
    assert "showing 51–60" in html and 'rel="next"' not in html and 'rel="prev"' in html


def test_a_page_past_the_end_of_a_capped_history_opens_the_first(cast, login, monkeypatch):
    monkeypatch.setattr(views, "COUNT_CAP", 30)
    _runs(cast.staging, cast.operator, 60)
    html = login(cast.viewer).get("/runs/?page=500").content.decode()
    assert "showing 1–25" in html and "r059" in html


def test_the_filter_menus_offer_the_clusters_and_users_of_visible_runs_only(cast, login):
    _runs(cast.staging, cast.operator, 3, cluster="staging")
    _runs(cast.staging, cast.admin, 2, cluster="arn:aws:ecs:eu-west-1:222222222222:cluster/staging-eu")
    _runs(cast.staging, cast.admin, 1, cluster="staging-eu")
    _runs(cast.prod, cast.approver, 1, cluster="prod-web")
    _runs(cast.other, cast.outsider, 2, cluster="other-secret")
    html = login(cast.viewer).get("/runs/").content.decode()
    assert _options(html, "f-cluster") == ["All clusters", "prod-web", "staging", "staging-eu"]
    assert _options(html, "f-user") == ["Anyone", "admin", "approver", "operator"]
    html = login(cast.outsider).get("/runs/").content.decode()
    assert _options(html, "f-cluster") == ["All clusters", "other-secret"]
    assert _options(html, "f-user") == ["Anyone", "outsider"]


def test_a_superuser_sees_every_accounts_clusters_and_users(cast, login):
    _runs(cast.staging, cast.operator, 1, cluster="staging")
    _runs(cast.other, cast.outsider, 1, cluster="other-secret")
    html = login(cast.admin).get("/runs/").content.decode()
    assert _options(html, "f-cluster") == ["All clusters", "other-secret", "staging"]
    assert _options(html, "f-user") == ["Anyone", "operator", "outsider"]


def test_the_cluster_filter_matches_runs_picked_by_name_and_by_arn_on_the_users_accounts(cast, login):
    _runs(cast.staging, cast.operator, 2, cluster="staging-eu")
    _runs(cast.staging, cast.admin, 3, cluster="arn:aws:ecs:eu-west-1:222222222222:cluster/staging-eu")
    _runs(cast.staging, cast.admin, 4, cluster="staging")
    _runs(cast.other, cast.outsider, 6, cluster="staging-eu")
    html = login(cast.viewer).get("/runs/?cluster=staging-eu").content.decode()
    assert "5 runs" in html and html.count('class="run-row"') == 5
    html = login(cast.viewer).get(f"/runs/?cluster=staging-eu&account={cast.prod.pk}").content.decode()
    assert "No runs match these filters." in html


def test_the_number_of_queries_does_not_grow_with_runs_users_or_clusters(cast, login):
    from django.test.utils import CaptureQueriesContext

    client = login(cast.viewer)
    _runs(cast.staging, cast.operator, 1)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/runs/").status_code == 200
    for n in range(12):
        _runs(
            cast.staging if n % 2 else cast.prod, [cast.operator, cast.admin, cast.approver][n % 3], 10, cluster=f"c{n}"
        )
    with CaptureQueriesContext(connection) as many:
        assert client.get("/runs/").status_code == 200
    assert len(many) == len(few) <= 11


def test_the_filter_menus_skip_through_the_index_without_scanning_the_runs(cast):
    """The plan of one step of the skip: an index search on (account, column), no table scan."""
    for column, after in (("cluster", ""), ("requested_by_id", 0)):
        step = f"SELECT MIN(t.{column}) FROM runs_run t WHERE t.account_id = %s AND t.{column} > %s"  # noqa: S608
        plan = _plan(step, [cast.staging.pk, after])
        assert "run_account_" in plan, plan
        assert "SCAN t" not in plan and "Seq Scan" not in plan


def _plan(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            return " ".join(str(row[-1]) for row in cursor.fetchall())
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: ask whether an index can serve
        cursor.execute("EXPLAIN " + sql, params)
        return " ".join(row[0] for row in cursor.fetchall())


def test_a_status_is_counted_from_the_index_alone(cast):
    plan = _plan("SELECT COUNT(*) FROM runs_run WHERE status = %s AND account_id IN (%s, %s)", ["failed", 1, 2])
    assert "COVERING INDEX run_status_account_idx" in plan or "Index Only Scan using run_status_account_idx" in plan


@pytest.mark.parametrize("mode", [m for m, _ in RunMode.choices])
@pytest.mark.parametrize("exit_code", [None, 0, 3])
@pytest.mark.parametrize("status", [s for s, _ in RunStatus.choices])
def test_the_rows_built_in_python_show_the_status_and_exit_code_as_the_run_page_does(status, exit_code, mode):
    """The history's rows come from `run_list.run_rows`, not from the includes the run page
    uses: each cell equals what `_status_badge.html` and `_exit_code.html` render."""
    run = Run(pk=4321, status=status, exit_code=exit_code, mode=mode)
    assert run_list.status_badge_html(run) == render_to_string("runs/_status_badge.html", {"run": run})
    assert run_list.exit_code_html(run) == render_to_string("runs/_exit_code.html", {"run": run})


def test_the_rows_built_in_python_escape_what_people_and_aws_wrote_and_link_each_run(cast, login):
    cast.prod.name = "Prod <b>team</b>"
    cast.prod.save(update_fields=["name"])
    run = Run.objects.create(
        account=cast.prod,
        region="eu-west-1",
        cluster="arn:aws:ecs:eu-west-1:111111111111:cluster/web&api",
        task_arn="arn:aws:ecs:eu-west-1:111111111111:task/web/0123456789abcdef0123",
        container='app"1',
        command='echo "<script>alert(1)</script>"',
        runbook_name="<i>book</i>",
        requested_by=cast.operator,
        status=RunStatus.FAILED,
        exit_code=2,
        bytes_out=2048,
    )
    html = login(cast.viewer).get("/runs/").content.decode()
    assert "<script>alert" not in html and "<b>team" not in html and "<i>book" not in html
    assert 'title="echo &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;"' in html
    assert "<bdi>Prod &lt;b&gt;team&lt;/b&gt;</bdi>" in html
    assert '<span class="badge text-bg-light border me-1">&lt;i&gt;book&lt;/i&gt;</span>' in html
    assert f'<a href="/runs/{run.pk}/" class="run-link">#{run.pk}</a>' in html
    assert "web&amp;api" in html and "0123456789abc…" in html and "app&quot;1" in html
    assert f'id="run-exit-code-{run.pk}">2</span>' in html and "2.0\xa0KB" in html
