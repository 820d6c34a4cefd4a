"""Sessions and clients: credential source → optional AssumeRole → self-refreshing credentials.

Clients are cached per (account config, role, region, service). Assumed-role credentials are
botocore `RefreshableCredentials`, so botocore renews them before they expire, under its own
lock, on whichever thread next signs a request; nothing here runs a timer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials

from ecsportal.aws.errors import translate


@dataclass(frozen=True)
class AccountConfig:
    """What the AWS layer needs to reach one account. `key` changes whenever the account does."""

    key: str
    account_id: str
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)
    role_arn: str = ""
    external_id: str = field(default="", repr=False)
    session_name: str = "ecsportal"
    session_duration: int = 3600


@dataclass
class _Settings:
    endpoint_url: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    max_attempts: int = 5
    local_exec: bool = False
    clock: Callable[[], datetime] | None = None


_settings = _Settings()
_create_lock = threading.RLock()
_sessions: dict[tuple[str, str], boto3.Session] = {}
_clients: dict[tuple[str, str, str, str], Any] = {}


MAX_POOL_CONNECTIONS = 32


def configure(**options: Any) -> None:
    """Set endpoint, timeouts, retries (and, in tests, a clock); drops cached clients."""
    for name, value in options.items():
        if not hasattr(_settings, name):
            raise TypeError(f"unknown AWS setting {name}")
        setattr(_settings, name, value)
    clear_cache()


def current_settings() -> _Settings:
    return _settings


def clear_cache() -> None:
    with _create_lock:
        _sessions.clear()
        _clients.clear()


def _botocore_config() -> Config:
    return Config(
        retries={"mode": "adaptive", "max_attempts": _settings.max_attempts},
        connect_timeout=_settings.connect_timeout,
        read_timeout=_settings.read_timeout,
        user_agent_extra="ecsportal",
        # A client is shared by threads: the runners' AWS pool has 32 (runs/target.py), botocore
        # keeps 10 connections by default and would open and discard the rest every call.
        max_pool_connections=MAX_POOL_CONNECTIONS,
    )


_loader_lock = threading.Lock()
_shared_loader: Any = None


def _botocore_session() -> botocore.session.Session:
    """A new botocore session that shares one model loader with all the others.

    Each session would otherwise parse the service models (ECS's is a megabyte of JSON) again,
    and every edit of an account starts a new session.
    """
    global _shared_loader
    core = botocore.session.get_session()
    with _loader_lock:
        if _shared_loader is None:
            _shared_loader = core.get_component("data_loader")
    core.register_component("data_loader", _shared_loader)
    return core


def _base_session(config: AccountConfig) -> boto3.Session:
    if config.access_key_id and config.secret_access_key:
        return boto3.Session(
            aws_access_key_id=config.access_key_id,
            aws_secret_access_key=config.secret_access_key,
            botocore_session=_botocore_session(),
        )
    return boto3.Session(botocore_session=_botocore_session())


# STS for AssumeRole: the role's partition decides; us-east-1's global STS serves only "aws".
_PARTITION_STS_REGIONS = {"aws-cn": "cn-north-1", "aws-us-gov": "us-gov-west-1"}


def _sts_region(role_arn: str) -> str:
    partition = role_arn.split(":", 2)[1] if role_arn.count(":") >= 2 else "aws"
    return _PARTITION_STS_REGIONS.get(partition, "us-east-1")


def _refresh_windows(duration: int) -> dict[str, int]:
    """botocore renews 15 (advisory) and 10 (mandatory) minutes before expiry. A 15-minute
    session would sit in that window from birth and assume the role again on every call, so
    short sessions get windows in proportion to their length."""
    return {"advisory_timeout": min(15 * 60, duration // 3), "mandatory_timeout": min(10 * 60, duration // 6)}


def _assume_role_refresher(base: boto3.Session, config: AccountConfig, role_arn: str) -> Callable[[], dict]:
    def refresh() -> dict[str, str]:
        sts = base.client(
            "sts", region_name=_sts_region(role_arn), endpoint_url=_settings.endpoint_url, config=_botocore_config()
        )
        params: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": config.session_name or "ecsportal",
            "DurationSeconds": config.session_duration,
        }
        if config.external_id:
            params["ExternalId"] = config.external_id
        try:
            creds = sts.assume_role(**params)["Credentials"]
        except Exception as exc:
            raise translate(exc, operation="AssumeRole", where=role_arn) from exc
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    return refresh


def _session_for(config: AccountConfig, role_arn: str) -> boto3.Session:
    base = _base_session(config)
    if not role_arn:
        return base
    refresh = _assume_role_refresher(base, config, role_arn)
    metadata = refresh()
    kwargs: dict[str, Any] = _refresh_windows(config.session_duration)
    if _settings.clock is not None:
        kwargs["time_fetcher"] = _settings.clock
    credentials = RefreshableCredentials(
        access_key=metadata["access_key"],
        secret_key=metadata["secret_key"],
        token=metadata["token"],
        expiry_time=_parse_expiry(metadata["expiry_time"]),
        refresh_using=refresh,
        method="sts-assume-role",
        **kwargs,
    )
    core = _botocore_session()
    core._credentials = credentials  # botocore's documented way to hand a session its credentials
    return boto3.Session(botocore_session=core)


def _parse_expiry(value: str) -> datetime:
    from dateutil.parser import isoparse

    return isoparse(value)


def client(config: AccountConfig, service: str, region: str, *, role_arn: str | None = None) -> Any:
    """A cached boto3 client for the account, assuming `role_arn` (default: the account's role).

    boto3 sessions are not thread-safe, and the inventory fans out over threads, so sessions
    and clients are created under one lock; the clients themselves are thread-safe.
    """
    role = config.role_arn if role_arn is None else role_arn
    key = (config.key, role, region, service)
    cached = _clients.get(key)
    if cached is not None:
        return cached
    with _create_lock:
        cached = _clients.get(key)
        if cached is not None:
            return cached
        session = _sessions.get((config.key, role))
        if session is None:
            session = _sessions[(config.key, role)] = _session_for(config, role)
        new = session.client(
            service, region_name=region, endpoint_url=_settings.endpoint_url, config=_botocore_config()
        )
        if service == "ecs" and _settings.local_exec:
            from ecsportal.aws import local

            local.install_execute_command_seam(new)
        _clients[key] = new
        return new


SERVICES = ("ecs", "sts", "iam")
"""The AWS services the portal calls (their models are what `warm_models` loads)."""


def warm_models() -> None:
    """Load the models of `SERVICES` into the shared loader now, as a client's first creation
    would: a server process does it at start-up (`ecsportal.heap.settle`), so that they are part
    of the heap it freezes rather than a hundred thousand objects every full collection walks.
    No AWS call is made (a client is only built)."""
    core = _botocore_session()
    for service in SERVICES:
        # Placeholder credentials: building a client needs some, and nothing is ever signed or sent.
        core.create_client(service, region_name="us-east-1", aws_access_key_id="-", aws_secret_access_key="-")  # noqa: S106
