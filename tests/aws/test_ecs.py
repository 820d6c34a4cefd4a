"""ECS reads against moto's server: every page, DescribeTasks in batches of at most 100."""

from __future__ import annotations

import uuid

import pytest

from ecsportal.aws import ecs, sessions
from ecsportal.aws.sessions import AccountConfig
from ecsportal.demo import localaws

REGION = "ap-southeast-2"  # a region of its own, so the 250 tasks stay out of every other test


@pytest.fixture(scope="module")
def bulk_cluster(local_aws) -> str:
    client = localaws.boto_client(local_aws.endpoint_url, "ecs", REGION)
    client.create_cluster(clusterName="bulk")
    client.register_task_definition(
        family="tiny", containerDefinitions=[{"name": "x", "image": "busybox", "memory": 16}]
    )
    for _ in range(25):
        client.run_task(cluster="bulk", taskDefinition="tiny", count=10, launchType="FARGATE")
    return "bulk"


def config() -> AccountConfig:
    return AccountConfig(key=f"t-ecs-{uuid.uuid4().hex}", account_id=localaws.ACCOUNT_A)


def record_calls(cfg: AccountConfig, operation: str, region: str = REGION) -> list[dict]:
    calls: list[dict] = []
    client = sessions.client(cfg, "ecs", region)
    client.meta.events.register(
        f"before-parameter-build.ecs.{operation}", lambda params, **_: calls.append(dict(params))
    )
    return calls


def test_running_tasks_lists_all_and_describes_at_most_100_at_a_time(bulk_cluster):
    cfg = config()
    listed = record_calls(cfg, "ListTasks")
    described = record_calls(cfg, "DescribeTasks")
    tasks = ecs.running_tasks(cfg, REGION, bulk_cluster)
    assert len(tasks) == 250
    assert len({t.arn for t in tasks}) == 250
    assert listed, "ListTasks went through the paginator"
    assert [len(call["tasks"]) for call in described] == [100, 100, 50]


def test_describe_tasks_keeps_the_order_of_the_arns_given(bulk_cluster):
    cfg = config()
    arns = ecs.list_task_arns(cfg, REGION, bulk_cluster)
    described = record_calls(cfg, "DescribeTasks")
    wanted = list(reversed(arns[:120]))
    assert [t.arn for t in ecs.describe_tasks(cfg, REGION, bulk_cluster, wanted)] == wanted
    assert [len(call["tasks"]) for call in described] == [100, 20]


def test_task_records_carry_exec_readiness_fields(local_aws):
    tasks = ecs.running_tasks(config(), "eu-west-1", "prod-web")
    web = [t for t in tasks if t.service_name == "web"]
    assert len(web) == 2
    task = web[0]
    assert task.last_status == "RUNNING"
    assert task.launch_type == "FARGATE"
    assert task.task_definition == "web:1"
    assert task.enable_execute_command is True
    assert task.started_at is not None and task.started_at.tzinfo is not None
    assert [c.name for c in task.containers] == ["app", "envoy"]
    assert all(c.exec_agent_status == "RUNNING" and c.runtime_id for c in task.containers)
    assert task.exec_readiness("app").ready is True


def test_readiness_explains_why_a_task_is_not_ready(local_aws):
    tasks = {t.service_name: t for t in ecs.running_tasks(config(), "eu-west-1", "prod-web")}
    worker = tasks["worker"].exec_readiness()
    assert worker.ready is False
    assert "ECS Exec was not enabled when this task started" in worker.reason
    canary = tasks["web-canary"].exec_readiness()
    assert canary.ready is False
    assert "The ExecuteCommandAgent in app is pending" in canary.reason
    assert "no container named nope" in tasks["web"].exec_readiness("nope").reason


def test_stopped_tasks_keep_their_stop_codes_and_container_reasons(local_aws):
    cfg = config()
    arns = ecs.list_task_arns(cfg, "eu-west-1", "prod-web", desired_status="STOPPED")
    stopped = ecs.describe_tasks(cfg, "eu-west-1", "prod-web", arns)
    oom = [t for t in stopped if t.containers and t.containers[0].exit_code == 137]
    assert oom, "the demo's OutOfMemory stops are missing"
    assert oom[0].stop_code == "EssentialContainerExited"
    assert oom[0].containers[0].reason.startswith("OutOfMemoryError")
    assert oom[0].stopped_at is not None


def test_services_and_clusters_are_plain_records(local_aws):
    cfg = config()
    clusters = {c.name: c for c in ecs.list_clusters(cfg, "eu-west-1")}
    assert clusters["prod-web"].status == "ACTIVE"
    services = {s.name: s for s in ecs.list_services(cfg, "eu-west-1", "prod-web")}
    assert services["web"].desired_count == 2
    assert services["web"].enable_execute_command is True
    assert services["worker"].enable_execute_command is False


def test_demo_counts_match_the_tasks_that_run(local_aws):
    """The seed settles moto's counters, so the overview's numbers agree with the task list."""
    cfg = config()
    for cluster in ecs.list_clusters(cfg, "eu-west-1"):
        running = ecs.running_tasks(cfg, "eu-west-1", cluster.name)
        assert cluster.running_tasks == len(running), cluster.name
        assert cluster.pending_tasks == 0
        services = ecs.list_services(cfg, "eu-west-1", cluster.name)
        assert cluster.active_services == len(services)
        for service in services:
            assert (
                service.running_count
                == service.desired_count
                == len([t for t in running if t.service_name == service.name])
            )


def test_a_tasks_address_comes_from_its_eni_else_from_its_first_container_interface():
    from ecsportal.aws.ecs import task_record

    eni = {
        "attachments": [
            {"type": "ElasticNetworkInterface", "details": [{"name": "privateIPv4Address", "value": "10.1.2.3"}]}
        ]
    }
    bridge = {"containers": [{"name": "app", "networkInterfaces": [{"privateIpv4Address": "172.17.0.4"}]}]}
    assert task_record(eni).private_ip == "10.1.2.3"
    assert task_record(bridge).private_ip == "172.17.0.4"
    assert task_record({}).private_ip == ""
