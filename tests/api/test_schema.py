"""schemathesis over the API's own OpenAPI schema, with a valid token: bounded examples per
operation; no 5xx, and every answer (status, content type, body) matches the schema.

The operations are walked in one test (schemathesis' pytest fixture loader reads a node
attribute pytest 9 no longer has), each with its own hypothesis run."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.api.conftest import make_token

EXAMPLES = 15


@pytest.fixture
def connections_kept():
    """As Django's test client does: a request's end must not close the test's connection
    (its transaction holds the fixtures; PostgreSQL would lose them)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.django_db
def test_every_operation_answers_as_its_schema_says(cast, local_aws, settings: object, connections_kept) -> None:
    settings.ECSPORTAL_API_LONG_POLL_SECONDS = 0.2  # `wait` is fuzzed too: keep each call short
    settings.ECSPORTAL_API_REQUESTS_PER_MINUTE = 0
    headers = {"Authorization": f"Bearer {make_token(cast.admin)}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application(), headers=headers)
    failures: dict[str, str] = {}
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        count += 1

        @given(case=operation.as_strategy())
        @settings_(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:
            # Excluded: "schema-valid data must be accepted". The services refuse with 422 what
            # only they can judge (an account's regions, a reason the account's policy asks for).
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        try:
            check()
        except (
            BaseException
        ) as exc:  # FailureGroup is a BaseExceptionGroup; gather them all: one report names every failing operation
            failures[operation.label] = str(exc)[:2000]
    assert count >= 20
    assert not failures, "\n\n".join(f"{name}:\n{text}" for name, text in failures.items())


settings_ = settings
