"""Inventory pages render the demo estate, through the accounts gate, one failure at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from ecsportal.accounts.models import AwsAccount
from ecsportal.aws import ecs, sessions
from ecsportal.demo.localaws import FLEET_TASKS
from tests.awsfakes import fail_calls

pytestmark = pytest.mark.django_db


@pytest.fixture
def inject(local_aws) -> Iterator[Callable[..., None]]:
    """`inject(account, region, "ListTasks", code, when=…)`: AWS answers that call of the account's client with `code`."""
    undo: list[Callable[[], None]] = []

    def _inject(account: AwsAccount, region: str, operation: str, code: str, **options: object) -> None:
        undo.append(fail_calls(sessions.client(account.aws_config(), "ecs", region), operation, code, **options))

    yield _inject
    for remove in undo:
        remove()


def web_task_id(cast) -> str:
    tasks = ecs.running_tasks(cast.prod.aws_config(), "eu-west-1", "prod-web")
    return next(t.id for t in tasks if t.service_name == "web")


def test_overview_lists_clusters_of_both_accounts(local_aws, cast, login):
    page = login(cast.viewer).get("/inventory/")
    assert page.status_code == 200
    html = page.content.decode()
    for name in ("prod-web", "prod-batch", "prod-edge", "staging", "staging-eu"):
        assert f">{name}</a>" in html
    assert "Acme Production" in html and "Acme Staging" in html
    assert "cluster-error" not in html


def test_overview_filters_by_account(local_aws, cast, login):
    html = login(cast.viewer).get(f"/inventory/?account={cast.staging.pk}").content.decode()
    assert ">staging</a>" in html and ">staging-eu</a>" in html
    assert ">prod-web</a>" not in html


def test_outsider_sees_none_of_the_demo_estate(local_aws, cast, login):
    client = login(cast.outsider)
    html = client.get("/inventory/").content.decode()
    for text in ("prod-web", "staging", "Acme Production", "Acme Staging", "123456789012"):
        assert text not in html
    answer = client.get(f"/inventory/?account={cast.prod.pk}")
    assert answer.status_code == 404
    assert "Acme Production" not in answer.content.decode()


def test_anonymous_visitors_are_sent_to_login(client, cast):
    for path in ("/inventory/", "/inventory/pick/", f"/inventory/{cast.prod.pk}/eu-west-1/prod-web/"):
        answer = client.get(path)
        assert answer.status_code == 302 and answer["Location"].startswith("/login/"), path


def test_member_without_accounts_gets_an_empty_state(local_aws, cast, login):
    from django.contrib.auth import get_user_model

    nobody = get_user_model().objects.create_user("nobody", password="x")
    html = login(nobody).get("/inventory/").content.decode()
    assert "No accounts to browse." in html


def test_cluster_page_shows_services_tasks_and_readiness_with_reasons(local_aws, cast, login):
    answer = login(cast.viewer).get(f"/inventory/{cast.prod.pk}/eu-west-1/prod-web/")
    assert answer.status_code == 200
    html = answer.content.decode()
    for service in ("web", "worker", "web-canary"):
        assert f'<a href="?service={service}">{service}</a>' in html
    assert html.count(">exec ready</span>") == 2
    assert html.count(">exec not ready</span>") == 2
    assert "ECS Exec was not enabled when this task started" in html
    assert "The ExecuteCommandAgent in app is pending" in html
    assert "<time datetime=" in html  # started-at, relative with the absolute time on hover


def test_cluster_page_filters_by_service(local_aws, cast, login):
    html = login(cast.viewer).get(f"/inventory/{cast.prod.pk}/eu-west-1/prod-web/?service=worker").content.decode()
    assert "Running tasks of worker" in html
    assert html.count(">exec not ready</span>") == 1
    assert ">exec ready</span>" not in html


def test_cluster_page_of_the_assumed_role_account(local_aws, cast, login):
    html = login(cast.viewer).get(f"/inventory/{cast.staging.pk}/eu-west-1/staging/").content.decode()
    assert "Acme Staging" in html
    assert html.count(">exec ready</span>") == 2 + FLEET_TASKS  # web, worker, and the "fleet" service's tasks


def test_cluster_page_refuses_outsiders_and_unknown_regions(local_aws, cast, login):
    assert login(cast.outsider).get(f"/inventory/{cast.prod.pk}/eu-west-1/prod-web/").status_code == 404
    assert login(cast.viewer).get(f"/inventory/{cast.prod.pk}/ap-south-1/prod-web/").status_code == 404


def test_unknown_cluster_shows_an_error_not_a_crash(local_aws, cast, login):
    answer = login(cast.viewer).get(f"/inventory/{cast.prod.pk}/eu-west-1/nope/")
    assert answer.status_code == 200
    assert "Could not read this cluster." in answer.content.decode()


def test_task_page_shows_containers_and_readiness(local_aws, cast, login):
    task_id = web_task_id(cast)
    answer = login(cast.viewer).get(f"/inventory/{cast.prod.pk}/eu-west-1/prod-web/tasks/{task_id}/")
    assert answer.status_code == 200
    html = answer.content.decode()
    assert task_id in html
    assert "web:1" in html
    assert "<td>app</td>" in html and "<td>envoy</td>" in html
    assert ">exec ready</span>" in html
    assert "aws-appmesh-envoy:v1.29" in html


def test_task_page_refuses_outsiders(local_aws, cast, login):
    task_id = web_task_id(cast)
    answer = login(cast.outsider).get(f"/inventory/{cast.prod.pk}/eu-west-1/prod-web/tasks/{task_id}/")
    assert answer.status_code == 404
    assert task_id not in answer.content.decode()


def test_a_task_that_is_gone_says_so(local_aws, cast, login):
    answer = login(cast.viewer).get(f"/inventory/{cast.prod.pk}/eu-west-1/prod-web/tasks/{'0' * 32}/")
    assert answer.status_code == 200
    assert "it may have stopped over an hour ago" in answer.content.decode()


def test_one_clusters_access_denied_leaves_the_rest_of_the_overview(local_aws, cast, login, inject):
    inject(
        cast.prod,
        "eu-west-1",
        "ListTasks",
        "AccessDeniedException",
        message="denied",
        when=lambda request: request["cluster"] == "prod-batch",
    )
    html = login(cast.viewer).get("/inventory/").content.decode()
    assert html.count('class="cluster-error"') == 1
    assert "Access denied on prod-batch: the role lacks ecs:ListTasks" in html
    for name in ("prod-web", "prod-edge", "staging", "staging-eu"):
        assert f">{name}</a>" in html
    assert "2 of 4 tasks ready" in html  # prod-web still counted


def test_one_clusters_access_denied_shows_on_its_page_only(local_aws, cast, login, inject):
    inject(
        cast.prod,
        "eu-west-1",
        "ListTasks",
        "AccessDeniedException",
        message="denied",
        when=lambda request: request["cluster"] == "prod-batch",
    )
    client = login(cast.viewer)
    denied = client.get(f"/inventory/{cast.prod.pk}/eu-west-1/prod-batch/").content.decode()
    assert "Could not read this cluster." in denied and "ecs:ListTasks" in denied
    fine = client.get(f"/inventory/{cast.prod.pk}/eu-west-1/prod-web/").content.decode()
    assert "Could not read this cluster." not in fine
    assert ">exec ready</span>" in fine


def test_a_throttled_region_shows_an_error_and_the_other_regions_load(local_aws, cast, login, inject):
    inject(cast.prod, "us-east-1", "ListClusters", "ThrottlingException", message="Rate exceeded")
    html = login(cast.viewer).get("/inventory/").content.decode()
    assert "<bdi>Acme Production</bdi> · us-east-1:</strong> AWS throttled ListClusters" in html
    assert ">prod-edge</a>" not in html
    assert ">prod-web</a>" in html and ">staging</a>" in html


def test_disabled_accounts_are_left_out_of_the_overview(local_aws, cast, login):
    AwsAccount.objects.filter(pk=cast.staging.pk).update(is_enabled=False)
    html = login(cast.viewer).get("/inventory/").content.decode()
    assert ">staging</a>" not in html
    assert ">prod-web</a>" in html


def test_refresh_only_redirects_inside_the_inventory(local_aws, cast, login):
    client = login(cast.viewer)
    inside = client.post(f"/inventory/{cast.prod.pk}/refresh/", {"next": "/inventory/?account=1"})
    assert inside["Location"] == "/inventory/?account=1"
    outside = client.post(f"/inventory/{cast.prod.pk}/refresh/", {"next": "https://evil.example/"})
    assert outside["Location"] == "/inventory/"
    assert login(cast.outsider).post(f"/inventory/{cast.prod.pk}/refresh/").status_code == 404


def test_a_disabled_account_is_not_browsed_by_direct_link_either(local_aws, cast, login):
    AwsAccount.objects.filter(pk=cast.prod.pk).update(is_enabled=False)
    client = login(cast.viewer)
    for path in (
        f"/inventory/?account={cast.prod.pk}",
        f"/inventory/{cast.prod.pk}/eu-west-1/prod-web/",
        f"/inventory/{cast.prod.pk}/eu-west-1/prod-web/tasks/{'0' * 32}/",
    ):
        answer = client.get(path)
        assert answer.status_code == 403, path
        assert "Acme Production is disabled; an admin can enable it again." in answer.content.decode()


def test_an_account_whose_secret_cannot_be_read_shows_the_error_not_a_500(local_aws, cast, login):
    from cryptography.fernet import Fernet

    cast.staging.credential_source = "keys"
    cast.staging.access_key_id = "AKIAIOSFODNN7EXAMPLE"
    cast.staging.secret_access_key_encrypted = Fernet(Fernet.generate_key()).encrypt(b"lost").decode()
    cast.staging.save()
    client = login(cast.viewer)
    cluster = client.get(f"/inventory/{cast.staging.pk}/eu-west-1/staging/")
    assert cluster.status_code == 200
    assert "ECSPORTAL_SECRET_KEYS" in cluster.content.decode()
    overview = client.get("/inventory/")
    assert overview.status_code == 200 and ">prod-web</a>" in overview.content.decode()


def test_cluster_and_task_breadcrumbs_start_at_the_inventory(local_aws, cast, login):
    root = '<li class="breadcrumb-item"><a href="/inventory/">Inventory</a></li>'
    cluster = login(cast.viewer).get(f"/inventory/{cast.prod.pk}/eu-west-1/prod-web/").content.decode()
    assert cluster.index(root) < cluster.index(">Acme Production</a></li>")
    task_id = web_task_id(cast)
    task = login(cast.viewer).get(f"/inventory/{cast.prod.pk}/eu-west-1/prod-web/tasks/{task_id}/").content.decode()
    assert task.index(root) < task.index(">Acme Production</a></li>")
