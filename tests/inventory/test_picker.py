"""The cascading picker: account → region → cluster → task → container, one level at a time."""

from __future__ import annotations

import re
from datetime import UTC

import pytest

from ecsportal.accounts.models import AwsAccount
from ecsportal.aws import ecs

pytestmark = pytest.mark.django_db


def options(html: str, select_id: str) -> list[str]:
    """The option values of one <select>, without the "choose…" placeholder."""
    match = re.search(rf'<select[^>]*id="{select_id}"[^>]*>(.*?)</select>', html, re.S)
    assert match, f"no select #{select_id}"
    return [v for v in re.findall(r'<option value="([^"]*)"', match.group(1)) if v]


def selected(html: str, select_id: str) -> str:
    match = re.search(rf'<select[^>]*id="{select_id}"[^>]*>(.*?)</select>', html, re.S)
    found = re.search(r'<option value="([^"]*)" selected>', match.group(1))
    return found.group(1) if found else ""


def is_disabled(html: str, select_id: str) -> bool:
    return bool(re.search(rf'<select[^>]*id="{select_id}"[^>]*\sdisabled>', html))


def pick(client, **params: str) -> str:
    answer = client.get("/inventory/pick/", params, headers={"HX-Request": "true"})
    assert answer.status_code == 200
    html = answer.content.decode()
    # Only the inside of #picker: the wrapper that listens for changes stays on the page.
    assert "<html" not in html and 'id="picker"' not in html and 'id="pick-account"' in html
    return html


def running(account: AwsAccount, region: str, cluster: str) -> dict[str, str]:
    """family → one running task ID."""
    return {t.task_definition.split(":")[0]: t.id for t in ecs.running_tasks(account.aws_config(), region, cluster)}


def test_full_page_offers_only_the_users_accounts(local_aws, cast, login):
    html = login(cast.viewer).get("/inventory/pick/").content.decode()
    assert "<html" in html
    assert options(html, "pick-account") == [str(cast.prod.pk), str(cast.staging.pk)]
    assert "Other Team" not in html
    for level in ("pick-region", "pick-cluster", "pick-task", "pick-container"):
        assert is_disabled(html, level)


def test_the_picker_cascades_level_by_level(local_aws, cast, login):
    client = login(cast.viewer)
    account = str(cast.prod.pk)
    html = pick(client, account=account)
    assert options(html, "pick-region") == ["eu-west-1", "us-east-1"]
    assert is_disabled(html, "pick-cluster") and not is_disabled(html, "pick-region")

    html = pick(client, account=account, region="eu-west-1")
    assert options(html, "pick-cluster") == ["prod-batch", "prod-web"]
    assert is_disabled(html, "pick-task")

    tasks = running(cast.prod, "eu-west-1", "prod-web")
    html = pick(client, account=account, region="eu-west-1", cluster="prod-web")
    assert sorted(options(html, "pick-task")) == sorted(
        t.id for t in ecs.running_tasks(cast.prod.aws_config(), "eu-west-1", "prod-web")
    )
    assert is_disabled(html, "pick-container")

    html = pick(client, account=account, region="eu-west-1", cluster="prod-web", task=tasks["web"])
    assert options(html, "pick-container") == ["app", "envoy"]
    assert selected(html, "pick-task") == tasks["web"]
    assert "exec ready" not in html, "two containers: no readiness until one is chosen"

    html = pick(client, account=account, region="eu-west-1", cluster="prod-web", task=tasks["web"], container="envoy")
    assert selected(html, "pick-container") == "envoy"
    assert ">exec ready</span>" in html


def test_a_single_container_is_chosen_for_you_with_its_readiness(local_aws, cast, login):
    tasks = running(cast.prod, "eu-west-1", "prod-web")
    html = pick(
        login(cast.viewer), account=str(cast.prod.pk), region="eu-west-1", cluster="prod-web", task=tasks["worker"]
    )
    assert selected(html, "pick-container") == "worker"
    assert ">exec not ready</span>" in html
    assert "ECS Exec was not enabled when this task started" in html


def test_a_task_of_another_cluster_is_not_offered(local_aws, cast, login):
    batch_task = running(cast.prod, "eu-west-1", "prod-batch")["report-job"]
    html = pick(login(cast.viewer), account=str(cast.prod.pk), region="eu-west-1", cluster="prod-web", task=batch_task)
    assert batch_task not in options(html, "pick-task")
    assert selected(html, "pick-task") == ""
    assert is_disabled(html, "pick-container")
    assert "exec ready" not in html and "exec not ready" not in html


def test_a_cluster_of_another_region_is_not_offered(local_aws, cast, login):
    html = pick(login(cast.viewer), account=str(cast.prod.pk), region="eu-west-1", cluster="prod-edge")
    assert selected(html, "pick-cluster") == ""
    assert is_disabled(html, "pick-task")


def test_a_region_the_account_does_not_enable_is_dropped(local_aws, cast, login):
    html = pick(login(cast.viewer), account=str(cast.prod.pk), region="ap-south-1")
    assert selected(html, "pick-region") == ""
    assert is_disabled(html, "pick-cluster")


def test_an_account_the_user_may_not_see_is_not_offered(local_aws, cast, login):
    client = login(cast.outsider)
    tasks = running(cast.prod, "eu-west-1", "prod-web")
    html = pick(
        client, account=str(cast.prod.pk), region="eu-west-1", cluster="prod-web", task=tasks["web"], container="app"
    )
    assert options(html, "pick-account") == [str(cast.other.pk)]
    for text in ("Acme Production", "prod-web", tasks["web"], "exec ready"):
        assert text not in html
    assert is_disabled(html, "pick-region")


def test_a_disabled_account_is_not_offered(local_aws, cast, login):
    AwsAccount.objects.filter(pk=cast.staging.pk).update(is_enabled=False)
    html = pick(login(cast.viewer), account=str(cast.staging.pk))
    assert options(html, "pick-account") == [str(cast.prod.pk)]
    assert is_disabled(html, "pick-region")


def test_the_assumed_role_account_cascades_too(local_aws, cast, login):
    html = pick(login(cast.viewer), account=str(cast.staging.pk), region="eu-central-1")
    assert options(html, "pick-cluster") == ["staging-eu"]


def test_forms_that_embed_the_picker_get_its_context_by_the_documented_keys(local_aws, cast):
    """stops, runs and runbooks call `picker_for_user` and adjust its context; the keys stay put."""
    from ecsportal.accounts.models import Role
    from ecsportal.inventory.selectors import picker_for_user

    params = {"account": str(cast.prod.pk), "region": "eu-west-1", "cluster": "prod-web", "reason": "ignored"}
    context = picker_for_user(user=cast.operator, params=params, min_role=Role.OPERATOR)
    assert set(context) == {
        "accounts",
        "account",
        "region",
        "cluster",
        "task_id",
        "container",
        "choices",
        "error",
        "readiness",
    }
    assert context["account"] == cast.prod and context["cluster"] == "prod-web"
    assert set(context["choices"]) == {"regions", "clusters", "tasks", "containers", "task"}
    assert context["choices"]["tasks"] and context["choices"]["task"] is None


def test_a_crafted_choice_is_dropped_not_fatal(local_aws, cast, login):
    html = pick(login(cast.viewer), account="99999999999999999999999", region="eu-west-1")
    assert selected(html, "pick-account") == "" and is_disabled(html, "pick-region")


def test_the_task_choices_show_the_whole_task_id_its_start_and_its_address(cast, login, local_aws):
    from ecsportal.demo import localaws

    config = cast.staging.aws_config()
    arns = ecs.list_task_arns(config, "eu-west-1", "staging")
    tasks = ecs.describe_tasks(config, "eu-west-1", "staging", arns)
    html = (
        login(cast.operator)
        .get(f"/inventory/pick/?account={cast.staging.pk}&region=eu-west-1&cluster=staging", HTTP_HX_REQUEST="true")
        .content.decode()
    )
    for task in tasks:
        moto = localaws.find_task(cast.staging.account_id, "eu-west-1", task.arn)
        assert task.private_ip and task.private_ip == moto.attachments[0]["details"][0]["value"]
        label = re.search(rf'<option value="{task.id}"[^>]*>([^<]*)</option>', html).group(1)
        started = task.started_at.astimezone(UTC).strftime("%b %-d %H:%M")
        assert f" · {task.id} · started {started} UTC · {task.private_ip}" in label
