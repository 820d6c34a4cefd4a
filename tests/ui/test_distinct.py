"""ui.distinct.distinct_values: the distinct values of a column by skipping through an index."""

from __future__ import annotations

import pytest
from django.core.exceptions import FieldDoesNotExist
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ecsportal.audit.models import AuditEvent
from ecsportal.ui.distinct import distinct_values

pytestmark = pytest.mark.django_db


def _events(account_pk: int | None, *actions: str) -> None:
    AuditEvent.objects.bulk_create(AuditEvent(account_pk=account_pk, action=a, actor_username="x") for a in actions)


def test_it_lists_each_value_once_sorted_from_the_whole_table():
    _events(None, "auth.login", "auth.login", "run.ended")
    _events(3, "account.update", "auth.login")
    assert distinct_values(AuditEvent, "action") == ["account.update", "auth.login", "run.ended"]


def test_within_groups_it_lists_only_their_values_in_one_statement():
    _events(1, "run.ended", "run.ended", "approval.approve")
    _events(2, "runbook.created")
    _events(3, "account.update")
    _events(None, "auth.login")
    with CaptureQueriesContext(connection) as queries:
        found = distinct_values(AuditEvent, "action", within=("account_pk", [1, 2]))
    assert found == ["approval.approve", "run.ended", "runbook.created"] and len(queries) == 1
    assert distinct_values(AuditEvent, "action", within=("account_pk", [])) == []


def test_it_stops_at_the_limit_per_group():
    _events(1, *[f"a.{n:02d}" for n in range(30)])
    assert distinct_values(AuditEvent, "action", within=("account_pk", [1]), limit=5) == [
        f"a.{n:02d}" for n in range(5)
    ]


def test_it_takes_only_the_models_own_fields():
    with pytest.raises(FieldDoesNotExist):
        distinct_values(AuditEvent, "action) FROM auth_user; --")
