"""Benchmark (not a test): the stopped-task collector against the AWS CLI, and the page at 100k rows.

    /work/main/.venv/bin/python tests/benchmarks/stopped_scan.py

1. moto's server runs in its own process (so the collector's threads and the CLI's processes
   talk to it over HTTP alike), holding 10 clusters × 1,000 stopped tasks, seeded straight
   into moto's backend objects.
2. (a) the collector's full scan into a throwaway SQLite database; (b) the AWS CLI for the same
   clusters, as a person would script it: `aws ecs list-tasks --desired-status STOPPED`
   (the CLI follows the pages itself) then `aws ecs describe-tasks` per 100 ARNs, one cluster
   after another.
3. (c) 100,000 rows of history (bulk-inserted, spread over the 14-day retention), then the
   stopped-task page as a logged-in viewer through Django's test client: 50 requests of the
   first page and 50 of a filtered page, after 3 warm-up requests each; p95 in milliseconds.

The last line printed is one JSON object with scan_s, cli_s, speedup_vs_cli, page_p95_ms and
filtered_page_p95_ms.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.deployed import deployed_environ

CLUSTERS = [f"bench-{i:02d}" for i in range(10)]
TASKS_PER_CLUSTER = 1000
HISTORY_ROWS = 100_000
REQUESTS = 50
REGION = "eu-west-1"
AWS_CLI = str(Path(sys.executable).with_name("aws"))


def _indexed_describe_tasks() -> None:
    """moto's DescribeTasks compares every task of every cluster in the region with every ARN
    asked for: O(tasks × ARNs), a quarter of a second per call at 10,000 tasks, which would
    make this benchmark measure moto. Real ECS answers in constant time per call. Swap in a
    lookup by ARN or ID within the cluster (what ECS does); the collector and the CLI get the
    same faster server."""
    from moto.ecs.exceptions import InvalidParameterException
    from moto.ecs.models import EC2ContainerServiceBackend

    def describe_tasks(self, cluster_str: str, tasks: list[str]) -> list:
        cluster = self._get_cluster(cluster_str)
        if not tasks:
            raise InvalidParameterException("Tasks cannot be empty.")
        pool = self.tasks.get(cluster.name, {})
        by_id = {arn.rsplit("/", 1)[-1]: task for arn, task in pool.items()}
        found = []
        for ref in tasks:
            task = pool.get(ref) or by_id.get(ref.rsplit("/", 1)[-1])
            if task is not None:
                task.advance()
                found.append(task)
        return found

    EC2ContainerServiceBackend.describe_tasks = describe_tasks


def serve_moto() -> None:
    """Child process: moto's server with the benchmark's clusters; runs until stdin closes."""
    import django

    django.setup()  # the seeding helpers build rows as the collector does: they import models
    from ecsportal.demo import localaws
    from tests.stopped.helpers import stopped_cluster

    _indexed_describe_tasks()
    aws = localaws.LocalAws()
    for name in CLUSTERS:
        stopped_cluster(aws.endpoint_url, name, count=TASKS_PER_CLUSTER, region=REGION)
    print(json.dumps({"endpoint": aws.endpoint_url}), flush=True)
    sys.stdin.read()
    aws.stop()


def start_moto() -> tuple[subprocess.Popen, str]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve-moto"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
    )
    line = child.stdout.readline()
    return child, json.loads(line)["endpoint"]


def setup_django(workdir: Path) -> None:
    os.environ.update(deployed_environ())  # the page is timed as deployed: DEBUG off
    os.environ["DJANGO_SETTINGS_MODULE"] = "ecsportal.settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ["ECSPORTAL_STOPPED_COLLECT_INTERVAL"] = "0"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def time_collector(endpoint: str) -> tuple[float, object]:
    from ecsportal.accounts.models import AwsAccount
    from ecsportal.aws import sessions
    from ecsportal.demo import localaws
    from ecsportal.stopped.collector import stopped_collect
    from ecsportal.stopped.models import CollectionRun

    localaws.use_fake_credentials()
    sessions.configure(endpoint_url=endpoint, connect_timeout=5, read_timeout=60, max_attempts=2)
    account = AwsAccount.objects.create(name="Bench", account_id=localaws.ACCOUNT_A, regions=[REGION])
    started = time.perf_counter()
    run = stopped_collect(trigger=CollectionRun.Trigger.COMMAND, accounts=[account])
    elapsed = time.perf_counter() - started
    assert run.clusters_failed == 0, "the scan failed on some cluster"
    assert run.tasks_seen == len(CLUSTERS) * TASKS_PER_CLUSTER, run.tasks_seen
    return elapsed, account


def time_cli(endpoint: str) -> float:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "local-moto-secret",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_PAGER": "",
    }
    base = [AWS_CLI, "--endpoint-url", endpoint, "--output", "json", "ecs"]
    described = 0
    started = time.perf_counter()
    for cluster in CLUSTERS:
        listed = subprocess.run(
            [*base, "list-tasks", "--cluster", cluster, "--desired-status", "STOPPED"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        arns = json.loads(listed.stdout)["taskArns"]
        for start in range(0, len(arns), 100):
            answer = subprocess.run(
                [*base, "describe-tasks", "--cluster", cluster, "--tasks", *arns[start : start + 100]],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            described += len(json.loads(answer.stdout)["tasks"])
    elapsed = time.perf_counter() - started
    assert described == len(CLUSTERS) * TASKS_PER_CLUSTER, described
    return elapsed


def fill_history(account: object) -> None:
    """Top the collected rows up to HISTORY_ROWS, spread over the retention window."""
    from django.utils import timezone

    from ecsportal.aws import records
    from ecsportal.stopped.collector import stopped_task_row
    from ecsportal.stopped.models import StoppedTask

    kinds = [
        ("EssentialContainerExited", "Essential container in task exited", (("app", 137, "OutOfMemoryError: Container killed due to memory usage"),)),
        ("EssentialContainerExited", "Essential container in task exited", (("app", 1, ""),)),
        ("ServiceSchedulerInitiated", "Scaling activity initiated by (deployment ecs-svc/4719830958472310)", (("app", 143, ""),)),
        ("TaskFailedToStart", "CannotPullContainerError: pull image manifest has been retried 5 time(s)", (("app", None, ""),)),
        ("ServiceSchedulerInitiated", "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/w/1)", (("app", 143, ""),)),
        ("TaskFailedToStart", "ResourceInitializationError: unable to pull secrets or registry auth", (("app", None, ""),)),
    ]  # fmt: skip
    now = timezone.now()
    rng = random.Random(7)
    missing = HISTORY_ROWS - StoppedTask.objects.count()
    batch: list[StoppedTask] = []
    for n in range(missing):
        stop_code, reason, containers = kinds[rng.randrange(len(kinds))]
        cluster = CLUSTERS[n % len(CLUSTERS)]
        service = f"svc-{n % 7}"
        stopped = now - timedelta(seconds=rng.randrange(14 * 24 * 3600))
        task = records.Task(
            arn=f"arn:aws:ecs:{REGION}:123456789012:task/{cluster}/{n:032x}",
            cluster_arn="", last_status="STOPPED", desired_status="STOPPED", launch_type="FARGATE",
            capacity_provider="", platform_version="1.4.0",
            task_definition_arn=f"arn:aws:ecs:{REGION}:123456789012:task-definition/{service}:{n % 5 + 1}",
            group=f"service:{service}", started_by="", availability_zone=f"{REGION}a", enable_execute_command=False,
            started_at=stopped - timedelta(minutes=20), stopping_at=stopped, stopped_at=stopped,
            execution_stopped_at=stopped, stop_code=stop_code, stopped_reason=reason,
            containers=tuple(records.Container(c, "", "STOPPED", "img:1", "", code, why, "") for c, code, why in containers),
        )  # fmt: skip
        batch.append(stopped_task_row(task, account_pk=account.pk, region=REGION, cluster=cluster, now=now))
        if len(batch) == 5000:
            StoppedTask.objects.bulk_create(batch, batch_size=500)
            batch = []
    StoppedTask.objects.bulk_create(batch, batch_size=500)
    from django.db import connection

    with connection.cursor() as cursor:  # what a deployment's periodic prune leaves the planner
        cursor.execute("ANALYZE")


def p95_ms(client: object, url: str) -> float:
    for _ in range(3):
        assert client.get(url).status_code == 200
    times = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        answer = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200
    return statistics.quantiles(times, n=20)[-1]


def time_pages(account: object) -> tuple[float, float]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from ecsportal.accounts.models import Membership, Role

    viewer = get_user_model().objects.create_user("bench-viewer", password="x")
    Membership.objects.create(user=viewer, account=account, role=Role.VIEWER)
    client = Client()
    client.force_login(viewer)
    page = p95_ms(client, "/stopped/")
    filtered = p95_ms(client, "/stopped/?category=out-of-memory&cluster=bench-03&range=7d")
    return page, filtered


def main() -> None:
    child, endpoint = start_moto()
    try:
        with tempfile.TemporaryDirectory(prefix="stopped-bench-") as tmp:
            setup_django(Path(tmp))
            scan_s, account = time_collector(endpoint)
            print(
                f"collector scan: {scan_s:.2f} s for {len(CLUSTERS)} clusters × {TASKS_PER_CLUSTER} tasks", flush=True
            )
            cli_s = time_cli(endpoint)
            print(f"AWS CLI: {cli_s:.2f} s", flush=True)
            fill_history(account)
            page, filtered = time_pages(account)
            print(f"page p95: {page:.1f} ms, filtered page p95: {filtered:.1f} ms ({HISTORY_ROWS} rows)", flush=True)
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    print(
        json.dumps(
            {
                "scan_s": round(scan_s, 3),
                "cli_s": round(cli_s, 3),
                "speedup_vs_cli": round(cli_s / scan_s, 1),
                "page_p95_ms": round(page, 1),
                "filtered_page_p95_ms": round(filtered, 1),
            }
        )
    )


if __name__ == "__main__":
    if "--serve-moto" in sys.argv:
        serve_moto()
    else:
        main()
