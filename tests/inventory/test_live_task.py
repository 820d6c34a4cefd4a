"""The one check before acting on a task, shared by a run and a stop: gate → role → region → ECS → status."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from ecsportal.aws import ecs
from ecsportal.demo import localaws
from ecsportal.inventory.selectors import live_task_get_for_user
from ecsportal.runs import services as runs
from ecsportal.stops.selectors import stop_target_for_user
from tests.runs.lab import *  # noqa: F403
from tests.runs.lab import RUNS_CLUSTER, RUNS_REGION

pytestmark = pytest.mark.django_db

NOT_ALLOWED = "arn:aws:iam::123456789012:role/not-allowed"


@pytest.fixture
def describe_calls(monkeypatch):
    calls: list[str] = []
    original = ecs.describe_tasks

    def counting(*args, **kwargs):
        calls.append(args[2])
        return original(*args, **kwargs)

    monkeypatch.setattr(ecs, "describe_tasks", counting)
    return calls


def _check(user, account, arn: str, **change):
    params = {"account_pk": account.pk, "region": RUNS_REGION, "cluster": RUNS_CLUSTER, "task": arn}
    return live_task_get_for_user(user=user, **{**params, **change})


def test_a_running_task_is_returned_as_ecs_describes_it(cast, runs_lab, lab_task):
    arn = lab_task()
    live = _check(cast.operator, runs_lab, arn.rsplit("/", 1)[-1])
    assert (live.account, live.region, live.cluster, live.task.arn, live.task.last_status) == (
        runs_lab,
        RUNS_REGION,
        RUNS_CLUSTER,
        arn,
        "RUNNING",
    )


def test_the_gate_and_the_role_override_are_decided_before_aws_is_asked(cast, runs_lab, lab_task, describe_calls):
    arn = lab_task()
    with pytest.raises(Http404):
        _check(cast.outsider, runs_lab, arn)
    with pytest.raises(PermissionDenied):
        _check(cast.viewer, runs_lab, arn)
    with pytest.raises(ValidationError, match="has not allowed this role"):
        _check(cast.operator, runs_lab, arn, role_arn=NOT_ALLOWED)
    with pytest.raises(ValidationError, match="us-west-2 is not one of Runs Lab's regions"):
        _check(cast.operator, runs_lab, arn, region="us-west-2")
    assert describe_calls == []


def test_a_stopped_task_is_refused_for_both_actions(cast, runs_lab, lab_task, runs_ecs):
    arn = lab_task()
    runs_ecs.stop_task(cluster=RUNS_CLUSTER, task=arn, reason="scaled in")
    for running in (True, False):
        with pytest.raises(ValidationError, match="is already stopped .*scaled in.*pick a running task"):
            _check(cast.operator, runs_lab, arn, running=running)


def test_a_task_still_starting_may_be_stopped_but_runs_no_command(cast, runs_lab, lab_task):
    arn = lab_task()
    localaws.find_task(localaws.ACCOUNT_A, RUNS_REGION, arn).last_status = "PENDING"
    assert _check(cast.operator, runs_lab, arn, running=False).task.arn == arn
    with pytest.raises(ValidationError, match="is pending; commands run only in running tasks"):
        _check(cast.operator, runs_lab, arn)


def test_a_run_and_a_stop_refuse_the_same_target_with_the_same_words(cast, runs_lab, lab_task):
    arn = lab_task()
    with pytest.raises(ValidationError) as as_run:
        runs.run_request(
            actor=cast.operator,
            account_pk=runs_lab.pk,
            region=RUNS_REGION,
            cluster=RUNS_CLUSTER,
            task=arn.rsplit("/", 1)[-1],
            container="app",
            command="id",
            role_arn=NOT_ALLOWED,
        )
    with pytest.raises(ValidationError) as as_stop:
        stop_target_for_user(
            user=cast.operator,
            account_pk=runs_lab.pk,
            region=RUNS_REGION,
            cluster=RUNS_CLUSTER,
            task=arn.rsplit("/", 1)[-1],
            task_arn="",
            role_arn=NOT_ALLOWED,
        )
    assert as_run.value.messages == as_stop.value.messages
    assert "has not allowed this role" in as_run.value.messages[0]
