from __future__ import annotations

from collections.abc import Iterator

import pytest

from ecsportal.aws import sessions


@pytest.fixture
def fresh_clients(local_aws) -> Iterator[None]:
    """Tests that hook botocore events or stub a client drop the cached clients afterwards,
    so no handler, stub or throttled rate limiter leaks into other tests."""
    sessions.clear_cache()
    yield
    sessions.clear_cache()
