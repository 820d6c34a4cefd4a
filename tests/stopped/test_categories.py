"""Category parsing and signature normalization: pure functions, fed the facts file's messages."""

from __future__ import annotations

import importlib

import pytest

from ecsportal.stopped.categories import (
    CATEGORIES,
    ContainerFacts,
    classify,
    exit_code_meaning,
    normalize_reason,
    signature_key,
)


def category_of(reason: str, stop_code: str = "", containers: tuple[ContainerFacts, ...] = ()) -> str:
    return classify(stop_code=stop_code, stopped_reason=reason, containers=containers).category.id


# Every error name of the facts file's table, as the prefix of stoppedReason.
@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (
            "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme/web:2026.11.27: not found",
            "cannot-pull-container",
        ),
        (
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval "
            "failed: unable to retrieve secret from asm: service call has been retried 5 time(s)",
            "resource-initialization",
        ),
        (
            "ResourceNotFoundException: The specified secret arn:aws:secretsmanager:us-east-1:123456789012:"
            "secret:api/db-XyZ12 was not found",
            "resource-not-found",
        ),
        ("OutOfMemoryError: Container killed due to memory usage", "out-of-memory"),
        (
            "CannotStartContainerError: Error response from daemon: failed to create shim task: OCI runtime "
            'create failed: exec: "/docker-entrypoint.sh": permission denied',
            "cannot-start-container",
        ),
        ("CannotStopContainerError: API error (500): Could not kill running container", "cannot-stop-container"),
        ("CannotInspectContainerError: Could not transition to inspecting", "cannot-inspect-container"),
        ("CannotCreateVolumeError: Error creating volume: efs mount failed", "cannot-create-volume"),
        ("ContainerRuntimeError: failed to create containerd task", "container-runtime-error"),
        ("ContainerRuntimeTimeoutError: Could not transition to running; timed out", "container-runtime-timeout"),
        (
            "DockerTimeoutError: Could not transition to started; timed out after waiting 3m0s",
            "container-runtime-timeout",
        ),
        ("InternalError: failed to provision ENI for task", "internal-error"),
        ("SpotInterruption: Spot capacity was not available", "spot-interruption"),
        ("SpotInterruptionError: Spot capacity was not available", "spot-interruption"),
    ],
)
def test_each_error_name_of_the_facts_file_gets_its_category(reason, expected):
    assert category_of(reason, "TaskFailedToStart") == expected


@pytest.mark.parametrize(
    ("reason", "stop_code", "expected"),
    [
        (
            "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:eu-west-1:123456789012:"
            "targetgroup/web/0a1b2c3d4e5f6a7b)",
            "ServiceSchedulerInitiated",
            "elb-health-check",
        ),
        ("Task failed container health checks", "ServiceSchedulerInitiated", "container-health-check"),
        (
            "Scaling activity initiated by (deployment ecs-svc/4719830958472310)",
            "ServiceSchedulerInitiated",
            "deployment",
        ),
        ("Host EC2 (instance i-0abc123def4567890) stopped/terminated", "", "infrastructure"),
        ("Host EC2 (instance i-0abc123def4567890) terminated.", "TerminationNotice", "infrastructure"),
        ("Your Spot Task was interrupted.", "SpotInterruption", "spot-interruption"),
        ("RESOURCE:MEMORY", "TaskFailedToStart", "failed-to-start"),
        ("RESOURCE:CPU", "TaskFailedToStart", "failed-to-start"),
        ("Unable to place a task: insufficient free addresses in subnet", "TaskFailedToStart", "failed-to-start"),
        ("ENI attachment failed", "TaskFailedToStart", "failed-to-start"),
        ("Something ECS has not said before", "TaskFailedToStart", "failed-to-start"),
        ("Task was replaced to rebalance", "InfrastructureHealth", "infrastructure"),
        ("Task stopped by user", "UserInitiated", "user-initiated"),
    ],
)
def test_common_non_error_reasons_and_stop_codes(reason, stop_code, expected):
    assert category_of(reason, stop_code) == expected


@pytest.mark.parametrize(("code", "expected"), [(0, "exit-0"), (1, "exit-1"), (137, "exit-137"), (139, "exit-139"),
                                                (143, "exit-143"), (2, "exit-other")])  # fmt: skip
def test_essential_container_exit_codes(code, expected):
    explained = classify(
        stop_code="EssentialContainerExited",
        stopped_reason="Essential container in task exited",
        containers=(ContainerFacts("worker", code),),
    )
    assert explained.category.id == expected
    assert explained.container == "worker"


def test_essential_container_without_an_exit_code():
    explained = classify(
        stop_code="EssentialContainerExited",
        stopped_reason="Essential container in task exited",
        containers=(ContainerFacts("app", None),),
    )
    assert explained.category.id == "exit-none"


def test_the_culprit_is_the_container_with_the_telling_exit_code_not_the_sidecar_terminated_after_it():
    explained = classify(
        stop_code="EssentialContainerExited",
        stopped_reason="Essential container in task exited",
        containers=(ContainerFacts("envoy", 143), ContainerFacts("app", 139)),
    )
    assert (explained.category.id, explained.container) == ("exit-139", "app")


def test_a_container_reason_beats_the_generic_essential_container_reason():
    explained = classify(
        stop_code="EssentialContainerExited",
        stopped_reason="Essential container in task exited",
        containers=(
            ContainerFacts("envoy", 143, ""),
            ContainerFacts("app", 137, "OutOfMemoryError: Container killed due to memory usage"),
        ),
    )
    assert (explained.category.id, explained.container) == ("out-of-memory", "app")
    assert explained.reason.startswith("OutOfMemoryError")


def test_multiple_containers_with_different_reasons_take_the_task_reason_first():
    explained = classify(
        stop_code="TaskFailedToStart",
        stopped_reason="CannotPullContainerError: pull image manifest has been retried 5 time(s)",
        containers=(
            ContainerFacts("envoy", None, "CannotStartContainerError: Error response from daemon"),
            ContainerFacts("app", None, "CannotPullContainerError: pull image manifest has been retried 5 time(s)"),
        ),
    )
    assert (explained.category.id, explained.container) == ("cannot-pull-container", "app")


def test_the_plain_memory_message_without_the_error_name_is_out_of_memory():
    assert (
        category_of(
            "", "EssentialContainerExited", (ContainerFacts("app", 137, "Container killed due to memory usage"),)
        )
        == "out-of-memory"
    )


def test_a_user_s_stop_reason_is_theirs_even_when_it_quotes_an_error_name():
    assert category_of("restarting after OutOfMemoryError last night", "UserInitiated") == "user-initiated"


PORTAL_REASON = "ecsportal #12: runaway report (requested by operator, approved by approver)"


# moto reports no stop code for StopTask, AWS reports UserInitiated; the containers say 143 or nothing.
@pytest.mark.parametrize("stop_code", ["UserInitiated", "", "EssentialContainerExited"])
@pytest.mark.parametrize("containers", [(), (ContainerFacts("app", 143), ContainerFacts("envoy", None))])
def test_the_portal_s_own_stops_are_their_own_routine_category(stop_code, containers):
    explained = classify(stop_code=stop_code, stopped_reason=PORTAL_REASON, containers=containers)
    assert explained.category.id == "portal"
    assert explained.category.label == "Stopped through ecsportal"
    assert explained.category.is_routine


def test_a_reason_that_merely_mentions_ecsportal_is_not_a_portal_stop():
    assert category_of("restarted by hand, see ecsportal #12: later", "UserInitiated") == "user-initiated"
    assert category_of("ecsportal #x: typed by someone", "") == "unknown"


def test_unknown_text_is_unknown():
    assert category_of("The moon was in the wrong phase") == "unknown"
    assert category_of("") == "unknown"


def test_every_category_explains_itself_and_links_to_aws():
    for c in CATEGORIES.values():
        assert c.label and c.meaning and c.checks
        assert c.doc_url.startswith("https://docs.aws.amazon.com/AmazonECS/")


@pytest.mark.parametrize(("code", "words"), [(0, "cleanly"), (1, "Application error"), (137, "SIGKILL"),
                                             (139, "SIGSEGV"), (143, "SIGTERM"), (None, "No exit code"),
                                             (134, "SIGABRT"), (3, "Application-specific")])  # fmt: skip
def test_exit_code_meanings(code, words):
    assert words in exit_code_meaning(code)


# --- signatures


def key(text: str, *, category: str = "cannot-pull-container", family: str = "web", container: str = "app") -> str:
    return signature_key(
        category_id=category, family=family, container=container, normalized_reason=normalize_reason(text)
    )


def test_normalization_strips_arns_ids_ips_hashes_times_and_numbers():
    text = (
        "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:eu-west-1:123456789012:"
        "targetgroup/web/0a1b2c3d4e5f6a7b) at 2026-11-27T03:14:15Z from 10.0.12.7:8080 task "
        "5f1c0e2d9b8a4c7e8f6a5b4c3d2e1f00 on i-0abc123def4567890 image sha256:" + "ab12" * 16 + " after 5 tries "
        "id 3fa85f64-5717-4562-b3fc-2c963f66afa6"
    )
    assert normalize_reason(text) == (
        "Task failed ELB health checks in (target-group <arn>) at <time> from <ip> task <hash> on <id> "
        "image <digest> after <n> tries id <id>"
    )


def test_the_same_failure_with_other_ids_groups_together():
    a = "CannotPullContainerError: failed to resolve ref 123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme/web:2026.11.27: not found"
    b = "CannotPullContainerError: failed to resolve ref 123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme/web:2026.12.01: not found"
    assert key(a) == key(b)
    deploy_a = "Scaling activity initiated by (deployment ecs-svc/4719830958472310)"
    deploy_b = "Scaling activity initiated by (deployment ecs-svc/9182736450918273)"
    assert key(deploy_a, category="deployment") == key(deploy_b, category="deployment")


def test_different_failures_do_not_group():
    pull_web = "CannotPullContainerError: failed to resolve ref acme/web:1: not found"
    pull_api = "CannotPullContainerError: failed to resolve ref acme/api:1: not found"
    assert key(pull_web) != key(pull_api)
    assert key("RESOURCE:MEMORY", category="failed-to-start") != key("RESOURCE:CPU", category="failed-to-start")
    oom = "OutOfMemoryError: Container killed due to memory usage"
    assert key(oom, category="out-of-memory", container="app") != key(oom, category="out-of-memory", container="envoy")
    assert key(oom, category="out-of-memory", family="web") != key(oom, category="out-of-memory", family="worker")
    assert key("Essential container in task exited", category="exit-1") != key(
        "Essential container in task exited", category="exit-137"
    )


def test_region_names_and_words_survive_normalization():
    assert normalize_reason("unable to reach eu-west-1 endpoint") == "unable to reach eu-west-1 endpoint"


@pytest.mark.django_db
def test_rows_kept_before_the_portal_category_existed_are_reclassified(cast):
    from django.apps import apps

    from tests.stopped.helpers import row

    migration = importlib.import_module("ecsportal.stopped.migrations.0003_portal_stops_category")
    ours = row(cast.prod, stop_code="UserInitiated", containers=(("app", 143, ""),), reason=PORTAL_REASON)
    theirs = row(cast.prod, stop_code="UserInitiated", reason="ecsportal said so")
    expected = (ours.category, ours.signature)
    StoppedTask = apps.get_model("stopped", "StoppedTask")
    StoppedTask.objects.filter(pk=ours.pk).update(category="user-initiated", signature="0" * 40)

    migration.reclassify(apps, None)

    ours.refresh_from_db()
    assert (ours.category, ours.signature) == expected == ("portal", ours.signature)
    theirs_before = (theirs.category, theirs.signature)
    theirs.refresh_from_db()
    assert (theirs.category, theirs.signature) == theirs_before
