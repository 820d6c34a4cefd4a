"""The home page for the person on call: each panel per role, and never another account's data."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from ecsportal.approvals.models import ApprovalRequest, Status
from ecsportal.runs.models import Run
from ecsportal.stopped.models import ClusterCollection
from tests.runs.lab import stored_run
from tests.stopped.helpers import row

pytestmark = pytest.mark.django_db

OOM = (("app", 137, "OutOfMemoryError: Container killed due to memory usage"),)


def _request(account, requester, label: str) -> ApprovalRequest:
    return ApprovalRequest.objects.create(
        action="ecs.stop_task",
        target={"region": "eu-west-1", "cluster": "prod-web", "task_arn": f"arn:aws:ecs:eu-west-1:1:task/c/{label}"},
        target_label=label,
        account=account,
        requester=requester,
        reason="runaway memory",
        expires_at=timezone.now() + timedelta(hours=1),
    )


def _run(account, user, command: str) -> Run:
    return stored_run(account=account, requested_by=user, command=command, status="succeeded")


def _broken_cluster(account, cluster: str, code: str) -> ClusterCollection:
    return ClusterCollection.objects.create(
        account=account, region="eu-west-1", cluster=cluster, state="error", last_error_code=code, last_error="no"
    )


@pytest.fixture
def estate(cast):
    """Something for every panel on the demo accounts, and the same on the outsider's account."""
    row(cast.prod, family="prod-api", minutes_ago=10, containers=OOM)
    row(
        cast.prod,
        family="prod-batch",
        minutes_ago=300,
        stop_code="TaskFailedToStart",
        reason="CannotPullContainerError: pull access denied",
    )
    row(
        cast.prod,
        family="prod-web",
        minutes_ago=5,
        stop_code="ServiceSchedulerInitiated",
        reason="Scaling activity initiated by (deployment ecs-svc/1)",
        containers=(("app", 0, ""),),
    )
    row(cast.other, family="other-secret-family", minutes_ago=5, containers=OOM)
    _request(cast.prod, cast.operator, "prod-web/operator-task")
    _request(cast.other, cast.outsider, "other/outsider-task")
    _run(cast.prod, cast.operator, "echo prod-run")
    _run(cast.other, cast.outsider, "echo other-secret-run")
    _broken_cluster(cast.prod, "prod-broken", "AccessDeniedException")
    _broken_cluster(cast.other, "other-broken", "ThrottlingException")
    return cast  # fmt: skip


def home(client) -> str:
    answer = client.get("/")
    assert answer.status_code == 200
    return answer.content.decode()


def test_anonymous_users_are_sent_to_log_in(client, db):
    for url in ("/", "/home/failures/"):
        answer = client.get(url)
        assert answer.status_code == 302 and answer["Location"].startswith("/login/")


def test_failures_of_the_last_hour_and_day_link_to_the_filtered_table(estate, login):
    html = home(login(estate.viewer))
    hour = html[html.index('id="failures-hour"') : html.index('id="failures-day"')]
    assert "prod-api" in hour and "prod-batch" not in hour  # five hours ago is not the last hour
    day = html[html.index('id="failures-day"') :]
    assert "prod-api" in day and "prod-batch" in day
    failures = html[html.index('id="panel-failures"') : html.index('id="panel-approvals"')]
    assert "prod-web" not in failures  # a deployment's scale-in is routine, not a failure
    link = re.search(r'href="(/stopped/\?[^"]+)" class="failure-link"', hour)[1].replace("&amp;", "&")
    assert "range=1h" in link and "signature=" in link
    table = login(estate.viewer).get(link).content.decode()
    assert table.count('class="stopped-row"') == 1 and "prod-api" in table


def test_the_portal_s_own_stops_are_not_failures_on_the_home_page(cast, login):
    # moto's StopTask leaves the stop code empty and the containers without exit codes
    row(cast.prod, family="prod-stopped-by-us", minutes_ago=3, stop_code="", containers=(("app", None, ""),),
        reason="ecsportal #7: runaway memory (requested by operator, approved by approver)")  # fmt: skip
    failures = home(login(cast.operator))
    failures = failures[failures.index('id="panel-failures"') : failures.index('id="panel-approvals"')]
    assert "prod-stopped-by-us" not in failures
    assert "Unknown" not in failures


@pytest.mark.parametrize("username", ["viewer", "operator", "approver"])
def test_no_member_ever_sees_another_account_s_data(estate, login, username):
    html = home(login(getattr(estate, username)))
    for foreign in ("other-secret-family", "other/outsider-task", "other-secret-run", "other-broken", "Other Team"):
        assert foreign not in html
    assert "prod-api" in html and "prod-broken" in html and "echo prod-run" in html


def test_the_outsider_sees_only_its_own_account(estate, login):
    html = home(login(estate.outsider))
    assert "other-secret-family" in html and "other-secret-run" in html and "other-broken" in html
    for foreign in ("prod-api", "prod-web/operator-task", "echo prod-run", "prod-broken", "Acme Production"):
        assert foreign not in html


def test_an_approver_sees_what_waits_for_their_decision(estate, login):
    html = home(login(estate.approver))
    assert 'id="home-waiting"' in html and "prod-web/operator-task" in html
    assert 'id="home-mine-empty"' in html


def test_an_operator_sees_their_own_pending_request_and_no_decision_list(estate, login):
    html = home(login(estate.operator))
    mine = html[html.index('id="home-mine"') :]
    assert "prod-web/operator-task" in mine
    assert "Waiting for your decision" not in html


def test_a_viewer_is_told_what_would_fill_the_approvals_panel(estate, login):
    html = home(login(estate.viewer))
    assert "Waiting for your decision" not in html and 'id="home-mine-empty"' in html
    assert "need the operator role" in html
    assert "need the operator role" not in home(login(estate.operator))


def test_a_decided_request_leaves_the_panels(estate, login):
    ApprovalRequest.objects.filter(target_label="prod-web/operator-task").update(status=Status.EXECUTED)
    assert 'id="home-waiting-empty"' in home(login(estate.approver))
    assert "prod-web/operator-task" not in home(login(estate.operator))


def test_the_approvals_panel_refreshes_from_the_approval_sockets(estate, login):
    html = home(login(estate.operator))
    request = ApprovalRequest.objects.get(target_label="prod-web/operator-task")
    assert f'data-live-ws="/ws/approvals/{request.pk}/" data-live-event="home-mine"' in html
    assert 'hx-trigger="approvals-inbox from:body, home-mine from:body' in html  # the nav's inbox socket too


def test_recent_runs_link_to_their_page(estate, login):
    run = Run.objects.get(command="echo prod-run")
    assert f'href="/runs/{run.pk}/"' in home(login(estate.viewer))


def test_every_panel_says_what_would_fill_it_when_empty(cast, login):
    html = home(login(cast.viewer))
    for empty in (
        "failures-hour-empty",
        "failures-day-empty",
        "home-mine-empty",
        "home-runs-empty",
        "home-clusters-empty",
    ):
        assert f'id="{empty}"' in html
    assert "Nothing collected yet" in html  # fmt: skip


def test_a_user_without_accounts_is_told_how_to_get_one(db, login, django_user_model):
    html = home(login(django_user_model.objects.create_user("nobody")))
    assert "not a member of any AWS account" in html and 'id="panel-failures"' not in html


@pytest.mark.parametrize("panel", ["failures", "approvals", "runs", "clusters"])
def test_each_panel_is_served_alone_as_a_fragment_for_the_same_user(estate, login, panel):
    answer = login(estate.outsider).get(f"/home/{panel}/", headers={"HX-Request": "true"})
    html = answer.content.decode()
    assert answer.status_code == 200 and "<html" not in html and "card-header" in html
    for foreign in ("prod-api", "operator-task", "echo prod-run", "prod-broken", "Acme"):
        assert foreign not in html


def test_an_unknown_panel_is_not_found(cast, login):
    assert login(cast.viewer).get("/home/secrets/").status_code == 404
