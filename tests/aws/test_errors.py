"""botocore's failures become our own errors, with words that say what to do next.

moto cannot enforce IAM on ECS nor throttle, so those answers are injected the way AWS would
send them: a botocore `before-call` hook that answers the call with AWS's error document. The
unknown cluster and the unreachable endpoint are real answers (moto, a closed port).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from ecsportal.aws import ecs, errors, sessions
from ecsportal.aws.sessions import AccountConfig
from ecsportal.demo import localaws
from tests.awsfakes import fail_calls


def fresh_config() -> AccountConfig:
    """A config no other test shares, so a hook on its client stays this test's own."""
    return AccountConfig(key=f"t-errors-{uuid.uuid4().hex}", account_id=localaws.ACCOUNT_A)


@pytest.fixture
def config(local_aws) -> Iterator[AccountConfig]:
    yield fresh_config()


def answer_with(config: AccountConfig, operation: str, code: str, message: str, status: int = 400) -> None:
    fail_calls(sessions.client(config, "ecs", "eu-west-1"), operation, code, message, status=status)


def test_access_denied_names_the_missing_iam_action(config):
    answer_with(
        config,
        "ListClusters",
        "AccessDeniedException",
        "User: arn:aws:sts::123456789012:assumed-role/ecsportal-access/ecsportal is not authorized to perform: "
        "ecs:ListClusters on resource: *",
    )
    with pytest.raises(errors.AccessDenied) as caught:
        ecs.list_clusters(config, "eu-west-1")
    assert caught.value.code == "AccessDeniedException"
    assert "the role lacks ecs:ListClusters" in str(caught.value)
    assert "Ask the account's AWS admin to allow ecs:ListClusters" in str(caught.value)


def test_access_denied_on_one_cluster_names_the_cluster(config):
    answer_with(config, "ListTasks", "AccessDeniedException", "not authorized to perform: ecs:ListTasks")
    with pytest.raises(errors.AccessDenied, match=r"Access denied on prod-web: the role lacks ecs:ListTasks"):
        ecs.running_tasks(config, "eu-west-1", "prod-web")


def test_unknown_cluster_is_not_found(config):
    with pytest.raises(errors.NotFound) as caught:
        ecs.list_services(config, "eu-west-1", "no-such-cluster")
    assert caught.value.code == "ClusterNotFoundException"
    assert "Not found on no-such-cluster: Cluster not found. It may have been deleted" in str(caught.value)


def test_unknown_task_says_it_may_have_stopped_long_ago(config):
    with pytest.raises(errors.AwsError, match="it may have stopped over an hour ago"):
        ecs.describe_task(config, "eu-west-1", "prod-web", "0123456789abcdef0123456789abcdef")


def test_unreachable_endpoint_fails_fast_with_a_clear_message(unreachable_aws):
    with pytest.raises(errors.EndpointUnreachable) as caught:
        ecs.list_clusters(fresh_config(), "eu-west-1")
    assert "Could not reach the AWS endpoint" in str(caught.value)
    assert "Check the network path, proxy and region" in str(caught.value)


def test_unreachable_sts_while_assuming_a_role_is_translated(unreachable_aws):
    config = AccountConfig(
        key=f"t-{uuid.uuid4().hex}", account_id=localaws.ACCOUNT_B, role_arn=localaws.ROLE_B, external_id="x-1"
    )
    with pytest.raises(errors.EndpointUnreachable):
        ecs.list_clusters(config, "eu-west-1")


def test_throttling_says_to_wait(config):
    answer_with(config, "ListClusters", "ThrottlingException", "Rate exceeded")
    with pytest.raises(
        errors.Throttled, match="AWS throttled ListClusters on eu-west-1 even after retries. Wait a minute"
    ):
        ecs.list_clusters(config, "eu-west-1")


@pytest.mark.parametrize("code", ["ExpiredTokenException", "UnrecognizedClientException"])
def test_expired_or_invalid_credentials_say_to_renew_them(config, code):
    answer_with(config, "ListClusters", code, "The security token included in the request is expired")
    with pytest.raises(errors.CredentialsError, match="expired, revoked or wrong. Renew"):
        ecs.list_clusters(config, "eu-west-1")


def test_an_unknown_error_keeps_aws_words(config):
    answer_with(config, "ListClusters", "ServerException", "Something broke inside ECS", status=500)
    with pytest.raises(errors.AwsError, match="AWS failed ListClusters on eu-west-1: ServerException: Something broke"):
        ecs.list_clusters(config, "eu-west-1")


def test_messages_never_carry_the_request_credentials(config):
    secret_config = AccountConfig(
        key=f"t-{uuid.uuid4().hex}",
        account_id=localaws.ACCOUNT_A,
        access_key_id="AKIAFTESTSERRORS0001",
        secret_access_key="never-in-an-error-message",
    )
    answer_with(secret_config, "ListClusters", "AccessDeniedException", "denied")
    with pytest.raises(errors.AwsError) as caught:
        ecs.list_clusters(secret_config, "eu-west-1")
    assert "never-in-an-error-message" not in str(caught.value)
    assert "never-in-an-error-message" not in json.dumps(vars(caught.value), default=str)


def test_fan_out_keeps_each_items_error_to_itself(config):
    client = sessions.client(config, "ecs", "eu-west-1")
    fail_calls(client, "ListTasks", "AccessDeniedException", "denied", when=lambda r: r["cluster"] == "prod-web")
    outcomes = ecs.fan_out(
        lambda cluster: ecs.running_tasks(config, "eu-west-1", cluster), ["prod-web", "nope", "prod-batch"]
    )
    assert [o.item for o in outcomes] == ["prod-web", "nope", "prod-batch"]
    assert isinstance(outcomes[0].error, errors.AccessDenied)
    assert isinstance(outcomes[1].error, errors.NotFound)
    assert outcomes[2].error is None
    assert sorted(t.task_definition.split(":")[0] for t in outcomes[2].result) == ["nightly-etl", "report-job"]
