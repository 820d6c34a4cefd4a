"""The collector against moto's server (the demo's stopped tasks and clusters of our own), plus
botocore's Stubber where moto cannot behave like ECS (it never pages ListTasks)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import Stubber

from ecsportal.accounts.models import AwsAccount
from ecsportal.aws import sessions
from ecsportal.demo import localaws
from ecsportal.stopped.collector import stopped_collect
from ecsportal.stopped.models import ClusterCollection, CollectionRun, StoppedTask
from tests.awsfakes import fail_calls
from tests.stopped.helpers import forget, stopped_cluster

pytestmark = pytest.mark.django_db

DEMO = {"prod-web", "prod-batch", "prod-edge", "staging", "staging-eu"}


def collect(accounts, clusters):
    return stopped_collect(trigger=CollectionRun.Trigger.COMMAND, accounts=accounts, clusters=set(clusters))


def test_it_collects_the_demo_s_stopped_tasks_and_explains_each(local_aws, cast):
    run = collect([cast.prod, cast.staging], DEMO)
    assert run.finished_at is not None and run.clusters_failed == 0 and run.clusters_total == 5
    got = {}
    for row in StoppedTask.objects.all():
        got.setdefault((row.cluster, row.category), []).append(row)
    expected = {
        ("prod-web", "out-of-memory"): 2,
        ("prod-web", "cannot-pull-container"): 1,
        ("prod-web", "exit-1"): 1,
        ("prod-web", "elb-health-check"): 1,
        ("prod-web", "deployment"): 1,
        ("prod-batch", "resource-initialization"): 1,
        ("prod-batch", "exit-139"): 1,
        ("prod-batch", "portal"): 1,  # the seed's "ecsportal #12: …" stop
        ("prod-batch", "failed-to-start"): 1,
        ("prod-edge", "spot-interruption"): 1,
        ("prod-edge", "resource-not-found"): 1,
        ("staging", "out-of-memory"): 1,
        ("staging", "cannot-start-container"): 1,
        ("staging-eu", "internal-error"): 1,
    }
    for key, count in expected.items():  # other tests may stop more demo tasks: at least these
        assert len(got.get(key, [])) >= count, key
    oom = got[("prod-web", "out-of-memory")][0]
    assert oom.account == cast.prod and oom.region == "eu-west-1" and oom.service == "web"
    assert (oom.family, oom.stop_code, oom.signature_container) == ("web", "EssentialContainerExited", "app")
    assert oom.revision is not None and oom.launch_type == "FARGATE" and oom.platform_version == "1.4.0"
    assert oom.availability_zone == "eu-west-1b" and oom.started_by.startswith("ecs-svc/")
    assert oom.stopping_at < oom.stopped_at and oom.execution_stopped_at is not None and oom.started_at is not None
    assert [(c["name"], c["exit_code"]) for c in oom.containers] == [("app", 137), ("envoy", 143)]
    assert oom.containers[0]["reason"].startswith("OutOfMemoryError") and oom.containers[0]["image"]
    # the two OOMs of web/app are one failure signature
    first, second = got[("prod-web", "out-of-memory")][:2]
    assert first.signature == second.signature and first.task_arn != second.task_arn
    pull = got[("prod-web", "cannot-pull-container")][0]
    assert pull.started_at is None and pull.containers[0]["exit_code"] is None
    staging = got[("staging", "out-of-memory")][0]
    assert staging.account == cast.staging  # reached through the assumed role


def test_collecting_again_does_not_duplicate_and_keeps_first_seen(local_aws, cast):
    collect([cast.prod], {"prod-web"})
    before = {r.task_arn: r for r in StoppedTask.objects.all()}
    run = collect([cast.prod], {"prod-web"})
    after = {r.task_arn: r for r in StoppedTask.objects.all()}
    assert set(before) == set(after) and len(after) == StoppedTask.objects.count()
    assert run.tasks_new == 0 and run.tasks_seen == len(after)
    for arn, row in after.items():
        assert row.first_seen_at == before[arn].first_seen_at
        assert row.last_seen_at > before[arn].last_seen_at


def test_history_survives_ecs_forgetting_the_task(local_aws, cast):
    arns = stopped_cluster(local_aws.endpoint_url, "sx-forget-01", count=3)
    collect([cast.prod], {"sx-forget-01"})
    gone = StoppedTask.objects.get(task_arn=arns[0])
    forget(localaws.ACCOUNT_A, "eu-west-1", "sx-forget-01", arns[0])
    run = collect([cast.prod], {"sx-forget-01"})
    assert run.tasks_seen == 2
    kept = StoppedTask.objects.get(task_arn=arns[0])
    assert kept.last_seen_at == gone.last_seen_at and kept.category == "out-of-memory"
    assert StoppedTask.objects.filter(cluster="sx-forget-01").count() == 3


def _count_describe_batches(client, batches: list[int]):
    def handler(request, **_):
        batches.append(len(json.loads(request.body)["tasks"]))

    client.meta.events.register("before-send.ecs.DescribeTasks", handler)


def test_describe_batches_never_exceed_100(local_aws, cast, fresh_clients):
    stopped_cluster(local_aws.endpoint_url, "sx-batch-250", count=250)
    batches: list[int] = []
    _count_describe_batches(sessions.client(cast.prod.aws_config(), "ecs", "eu-west-1"), batches)
    run = collect([cast.prod], {"sx-batch-250"})
    assert run.tasks_seen == 250 and StoppedTask.objects.filter(cluster="sx-batch-250").count() == 250
    assert sorted(batches, reverse=True) == [100, 100, 50]


def _task(arn: str, cluster_arn: str) -> dict:
    return {
        "taskArn": arn,
        "clusterArn": cluster_arn,
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "taskDefinitionArn": "arn:aws:ecs:eu-west-1:111122223333:task-definition/paged:7",
        "group": "service:paged",
        "stopCode": "EssentialContainerExited",
        "stoppedReason": "Essential container in task exited",
        "stoppedAt": datetime(2026, 11, 27, 3, 0, tzinfo=UTC),
        "containers": [{"name": "app", "exitCode": 1, "lastStatus": "STOPPED"}],
    }


def test_paging_through_three_pages_of_100_and_one_more(local_aws, cast, fresh_clients):
    """moto answers ListTasks in one page; Stubber answers the way ECS does, page by page."""
    # moto's default chain reaches 123456789012: the collector checks the declared ID first.
    account = AwsAccount.objects.create(name="Paged", account_id=localaws.ACCOUNT_A, regions=["eu-west-1"])
    cluster_arn = "arn:aws:ecs:eu-west-1:111122223333:cluster/paged"
    arns = [f"arn:aws:ecs:eu-west-1:111122223333:task/paged/{i:032x}" for i in range(301)]
    client = sessions.client(account.aws_config(), "ecs", "eu-west-1")
    stub = Stubber(client)
    stub.add_response("list_clusters", {"clusterArns": [cluster_arn]}, {})
    stub.add_response(
        "describe_clusters",
        {"clusters": [{"clusterName": "paged", "clusterArn": cluster_arn}]},
        {"clusters": [cluster_arn]},
    )
    pages = [arns[0:100], arns[100:200], arns[200:300], arns[300:]]
    for index, page in enumerate(pages):
        expected = {"cluster": "paged", "desiredStatus": "STOPPED", "maxResults": 100}
        if index:
            expected["nextToken"] = f"token-{index}"
        answer = {"taskArns": page}
        if index < len(pages) - 1:
            answer["nextToken"] = f"token-{index + 1}"
        stub.add_response("list_tasks", answer, expected)
        stub.add_response(
            "describe_tasks", {"tasks": [_task(a, cluster_arn) for a in page]}, {"cluster": "paged", "tasks": page}
        )
    with stub:
        run = stopped_collect(trigger=CollectionRun.Trigger.COMMAND, accounts=[account])
    stub.assert_no_pending_responses()
    assert run.clusters_failed == 0 and run.tasks_seen == 301
    rows = StoppedTask.objects.filter(account=account)
    assert rows.count() == 301 and set(rows.values_list("task_arn", flat=True)) == set(arns)
    assert set(rows.values_list("category", flat=True)) == {"exit-1"}
    assert rows.first().task_definition == "paged:7"


def _fail_cluster(client, operation: str, cluster: str, code: str, attempts: list[str]) -> None:
    """Answer `operation` on one cluster with an AWS error at the HTTP layer, so botocore's
    retries apply as they would to a real answer. moto cannot enforce IAM for ECS."""
    when = lambda body: body.get("cluster", "") == cluster  # noqa: E731
    fail_calls(client, operation, code, when=when, attempts=attempts, retried=True)


@pytest.mark.parametrize(
    ("code", "kind"), [("AccessDeniedException", "access_denied"), ("ClusterNotFoundException", "not_found")]
)
def test_one_cluster_failing_is_recorded_while_the_others_collect(local_aws, cast, fresh_clients, code, kind):
    bad, good = f"sx-deny-{kind[:3]}", f"sx-okay-{kind[:3]}"  # fresh clusters per case; moto is shared
    stopped_cluster(local_aws.endpoint_url, bad, count=2)
    ok_arns = stopped_cluster(local_aws.endpoint_url, good, count=2)
    attempts: list[str] = []
    _fail_cluster(sessions.client(cast.prod.aws_config(), "ecs", "eu-west-1"), "ListTasks", bad, code, attempts)
    run = collect([cast.prod], {bad, good})
    assert (run.clusters_total, run.clusters_failed) == (2, 1)
    denied = ClusterCollection.objects.get(account=cast.prod, cluster=bad)
    assert (denied.state, denied.last_error_code, denied.last_error_kind) == ("error", code, kind)
    assert bad in denied.last_error
    assert attempts == [code]  # neither is worth retrying
    ok = ClusterCollection.objects.get(account=cast.prod, cluster=good)
    assert ok.state == "ok" and ok.tasks_seen == 2 and ok.last_ok_at is not None and not ok.last_error
    assert set(StoppedTask.objects.filter(cluster=good).values_list("task_arn", flat=True)) == set(ok_arns)
    assert not StoppedTask.objects.filter(cluster=bad).exists()


def test_throttling_is_retried_then_reported(local_aws, cast, fresh_clients):
    stopped_cluster(local_aws.endpoint_url, "sx-throttle-03", count=1)
    attempts: list[str] = []
    client = sessions.client(cast.prod.aws_config(), "ecs", "eu-west-1")
    _fail_cluster(client, "ListTasks", "sx-throttle-03", "ThrottlingException", attempts)
    collect([cast.prod], {"sx-throttle-03", "prod-web"})
    # botocore's retries={"max_attempts": n} counts retries after the first attempt
    assert len(attempts) == sessions.current_settings().max_attempts + 1 > 1
    row = ClusterCollection.objects.get(account=cast.prod, cluster="sx-throttle-03")
    assert (row.state, row.last_error_kind, row.last_error_code) == ("error", "throttled", "ThrottlingException")
    assert "even after retries" in row.last_error
    assert ClusterCollection.objects.get(account=cast.prod, cluster="prod-web").state == "ok"


def test_a_region_whose_clusters_cannot_be_listed_is_recorded_as_such(local_aws, cast, fresh_clients):
    client = sessions.client(cast.prod.aws_config(), "ecs", "us-east-1")
    _fail_cluster(client, "ListClusters", "", "AccessDeniedException", [])
    run = collect([cast.prod], {"prod-web", "prod-edge"})
    region = ClusterCollection.objects.get(account=cast.prod, region="us-east-1", cluster="")
    assert region.state == "error" and "ecs:ListClusters" in region.last_error
    assert ClusterCollection.objects.get(account=cast.prod, cluster="prod-web").state == "ok"
    assert run.clusters_total == 1


def test_a_later_success_clears_the_cluster_s_error(local_aws, cast, fresh_clients):
    client = sessions.client(cast.prod.aws_config(), "ecs", "eu-west-1")
    _fail_cluster(client, "ListTasks", "prod-batch", "AccessDeniedException", [])
    collect([cast.prod], {"prod-batch"})
    sessions.clear_cache()
    collect([cast.prod], {"prod-batch"})
    row = ClusterCollection.objects.get(account=cast.prod, cluster="prod-batch")
    assert row.state == "ok" and row.last_error == "" and row.last_ok_at > datetime.now(UTC) - timedelta(minutes=1)


def test_disabled_accounts_are_not_collected(local_aws, cast):
    cast.staging.is_enabled = False
    cast.staging.save()
    stopped_collect(trigger=CollectionRun.Trigger.COMMAND, accounts=[cast.staging])
    assert not StoppedTask.objects.exists() and not ClusterCollection.objects.exists()


def _unreadable_secret(account: AwsAccount) -> None:
    """A stored key encrypted with a Fernet key the portal no longer has (a botched rotation)."""
    from cryptography.fernet import Fernet

    account.credential_source = "keys"
    account.access_key_id = "AKIAIOSFODNN7EXAMPLE"
    account.secret_access_key_encrypted = Fernet(Fernet.generate_key()).encrypt(b"lost").decode()
    account.save()


def test_an_account_whose_secret_cannot_be_read_fails_alone(local_aws, cast):
    _unreadable_secret(cast.staging)
    run = collect([cast.prod, cast.staging], DEMO)
    assert run.finished_at is not None
    assert StoppedTask.objects.filter(account=cast.prod).exists()
    failed = ClusterCollection.objects.filter(account=cast.staging)
    assert failed.exists() and all(row.state == "error" and row.last_error_code == "SecretUnreadable" for row in failed)
    assert "ECSPORTAL_SECRET_KEYS" in failed.first().last_error


def test_accounts_whose_credentials_reach_another_account_are_not_collected(local_aws, cast):
    """Seven made-up IDs on moto's default chain all reach 123456789012: before the check,
    each filed prod's tasks under its own name and every count was multiplied."""
    impostors = [
        AwsAccount.objects.create(name=f"Made up {i}", account_id=f"11112222333{i}", regions=["eu-west-1", "us-east-1"])
        for i in range(7)
    ]
    run = collect([cast.prod, *impostors], DEMO)
    assert StoppedTask.objects.filter(account__in=impostors).count() == 0
    assert StoppedTask.objects.filter(account=cast.prod).count() >= 12  # the demo estate's, once
    assert run.clusters_failed == 0  # the refused accounts never got as far as their clusters
    for account in impostors:
        errors = ClusterCollection.objects.filter(account=account)
        assert {(e.region, e.cluster, e.state) for e in errors} == {
            ("eu-west-1", "", ClusterCollection.State.ERROR),
            ("us-east-1", "", ClusterCollection.State.ERROR),
        }
        error = errors.first()
        assert error.last_error_code == "AccountMismatch" and error.last_error_kind == "account_mismatch"
        assert f"reach AWS account {localaws.ACCOUNT_A}, not {account.account_id}" in error.last_error


def test_an_account_reached_through_its_role_is_checked_against_the_role_s_account(local_aws, cast):
    run = collect([cast.staging], DEMO)
    assert run.clusters_failed == 0 and run.clusters_total == 2
    assert not ClusterCollection.objects.filter(account=cast.staging, state=ClusterCollection.State.ERROR).exists()
