"""Sessions against moto's server: assume-role into another account, self-refreshing credentials."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from dateutil.tz import tzutc

from ecsportal.aws import ecs, sessions
from ecsportal.aws.sessions import AccountConfig
from ecsportal.demo import localaws

PROD = AccountConfig(key="t-prod", account_id=localaws.ACCOUNT_A)


def staging(key: str, **changes: object) -> AccountConfig:
    return AccountConfig(
        key=key,
        account_id=localaws.ACCOUNT_B,
        role_arn=localaws.ROLE_B,
        external_id=localaws.EXTERNAL_ID_B,
        session_name="ecsportal-tests",
        **changes,
    )


def assumed_role_calls() -> int:
    """AssumeRole calls moto's server has answered so far (its own record, not ours)."""
    from moto.sts.models import sts_backends

    return sum(len(backend.assumed_roles) for regions in sts_backends.values() for backend in regions.values())


class Clock:
    """A clock the test moves; the AWS layer hands it to botocore as the credentials' time_fetcher."""

    def __init__(self) -> None:
        self.now = datetime.now(tzutc())

    def __call__(self) -> datetime:
        return self.now


def test_assumed_role_sees_only_the_second_accounts_clusters(local_aws):
    # Other tests add clusters of their own to the shared moto; the demo's must be where they belong.
    staging_west = {c.arn for c in ecs.list_clusters(staging("t-stg"), "eu-west-1")}
    prod_west = {c.arn for c in ecs.list_clusters(PROD, "eu-west-1")}
    assert f"arn:aws:ecs:eu-west-1:{localaws.ACCOUNT_B}:cluster/staging" in staging_west
    assert {f"arn:aws:ecs:eu-west-1:{localaws.ACCOUNT_A}:cluster/{n}" for n in ("prod-batch", "prod-web")} <= prod_west
    assert all(f":{localaws.ACCOUNT_B}:" in arn for arn in staging_west)
    assert all(f":{localaws.ACCOUNT_A}:" in arn for arn in prod_west)
    assert [c.name for c in ecs.list_clusters(staging("t-stg"), "eu-central-1")] == ["staging-eu"]
    assert ecs.list_clusters(PROD, "eu-central-1") == []


def test_assumed_role_identity_is_the_role_in_the_second_account(local_aws):
    identity = ecs.caller_identity(staging("t-stg-id"), "eu-west-1")
    assert identity.account_id == localaws.ACCOUNT_B
    assert identity.arn == f"arn:aws:sts::{localaws.ACCOUNT_B}:assumed-role/ecsportal-access/ecsportal-tests"


def test_an_allowed_override_role_is_assumed_instead_of_the_default(local_aws):
    identity = ecs.caller_identity(staging("t-stg-ro"), "eu-west-1", role_arn=localaws.ROLE_B_READONLY)
    assert "assumed-role/ecsportal-readonly/" in identity.arn


def test_clients_are_cached_per_account_role_region_and_service(local_aws):
    config = staging("t-cache")
    first = sessions.client(config, "ecs", "eu-west-1")
    assert sessions.client(config, "ecs", "eu-west-1") is first
    assert sessions.client(config, "ecs", "eu-central-1") is not first
    assert sessions.client(config, "sts", "eu-west-1") is not first
    assert sessions.client(config, "ecs", "eu-west-1", role_arn=localaws.ROLE_B_READONLY) is not first
    changed = staging("t-cache-after-edit")
    assert sessions.client(changed, "ecs", "eu-west-1") is not first


def test_clients_use_adaptive_retries_and_the_configured_timeouts(local_aws):
    config = sessions.client(PROD, "ecs", "eu-west-1").meta.config
    assert config.retries["mode"] == "adaptive"
    assert config.connect_timeout == sessions.current_settings().connect_timeout
    assert config.read_timeout == sessions.current_settings().read_timeout


def test_credentials_refresh_before_they_expire(aws_settings):
    clock = Clock()
    aws_settings(clock=clock)
    config = staging("t-refresh")
    ecs_client = sessions.client(config, "ecs", "eu-west-1")
    credentials = ecs_client._request_signer._credentials
    first_key = credentials.get_frozen_credentials().access_key
    calls = assumed_role_calls()
    ecs.list_clusters(config, "eu-west-1")
    assert assumed_role_calls() == calls, "fresh credentials must not be renewed"

    # five minutes before expiry: inside botocore's mandatory window, every caller waits for new ones
    # (going past the expiry itself would make botocore refuse the new, equally "expired" ones)
    clock.now += timedelta(seconds=config.session_duration - 300)
    assert [c.name for c in ecs.list_clusters(config, "eu-west-1")] == ["staging"]
    assert assumed_role_calls() > calls, "expired credentials were not renewed by AssumeRole"
    assert credentials.get_frozen_credentials().access_key != first_key


def test_short_sessions_do_not_assume_the_role_on_every_call(local_aws):
    """A 15-minute session sits inside botocore's default 15-minute advisory window from birth."""
    config = staging("t-short", session_duration=900)
    ecs.list_clusters(config, "eu-west-1")
    calls = assumed_role_calls()
    for _ in range(3):
        ecs.list_clusters(config, "eu-west-1")
    assert assumed_role_calls() == calls


def test_short_sessions_still_refresh_before_they_expire(aws_settings):
    clock = Clock()
    aws_settings(clock=clock)
    config = staging("t-short-refresh", session_duration=900)
    ecs.list_clusters(config, "eu-west-1")
    calls = assumed_role_calls()
    clock.now += timedelta(seconds=850)
    ecs.list_clusters(config, "eu-west-1")
    assert assumed_role_calls() > calls


@pytest.mark.parametrize(
    ("role_arn", "partition"),
    [("arn:aws-cn:iam::123456789012:role/x", "aws-cn"), ("arn:aws-us-gov:iam::123456789012:role/x", "aws-us-gov")],
)
def test_roles_in_other_partitions_are_assumed_through_their_partitions_sts(local_aws, role_arn, partition):
    """Global STS in us-east-1 cannot assume a China or GovCloud role; the partition's own STS can."""
    region = {"aws-cn": "cn-north-1", "aws-us-gov": "us-gov-west-1"}[partition]
    config = AccountConfig(key=f"t-{partition}", account_id="123456789012", role_arn=role_arn)
    identity = ecs.caller_identity(config, region)
    assert identity.arn == f"arn:{partition}:sts::123456789012:assumed-role/x/ecsportal"


def test_sessions_share_one_model_loader(local_aws):
    """Every account edit starts a new session; none of them should parse the service models again."""
    plain = sessions.client(AccountConfig(key="t-loader-1", account_id=localaws.ACCOUNT_A), "ecs", "eu-west-1")
    assumed = sessions.client(staging("t-loader-2"), "ecs", "eu-west-1")
    keyed = sessions.client(
        AccountConfig(key="t-loader-3", account_id="1", access_key_id="AKIAFTESTSLOADER0001", secret_access_key="s"),
        "ecs",
        "eu-west-1",
    )
    assert plain._loader is assumed._loader is keyed._loader


def test_a_shared_client_keeps_a_connection_for_every_thread_of_the_runners_aws_pool():
    """botocore's default of 10 connections made 32 runner threads open and discard connections."""
    from ecsportal.aws import sessions
    from ecsportal.runs import target

    assert sessions._botocore_config().max_pool_connections >= target.AWS_THREADS
