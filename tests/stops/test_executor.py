"""The stop executor as the gate calls it: every failure is the request's result, in words."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from ecsportal.accounts.models import AwsAccount, CredentialSource
from ecsportal.approvals import services
from ecsportal.approvals.models import Status
from ecsportal.stops.services import stop_request
from tests.approvals.lab import task_state

pytestmark = pytest.mark.django_db


def test_an_unreadable_stored_secret_fails_the_stop_in_words_and_still_refreshes_the_inventory(
    cast, lab, stop_target, stop_calls
):
    target = stop_target(cast.operator)
    request = stop_request(actor=cast.operator, target=target, reason="runaway memory")
    AwsAccount.objects.filter(pk=lab.pk).update(
        credential_source=CredentialSource.ACCESS_KEY,
        access_key_id="AKIAFTESTSUNREADABLE",
        secret_access_key_encrypted="not-a-fernet-token",
    )
    generation = cache.get(f"inv-gen:{lab.pk}", 0)

    done = services.approval_decide(actor=cast.approver, request_pk=request.pk, decision="approve")

    done.refresh_from_db()
    assert done.status == Status.FAILED
    assert "The action failed" not in done.result
    assert lab.name in done.result and "secret" in done.result.lower()
    assert cache.get(f"inv-gen:{lab.pk}", 0) == generation + 1
    assert stop_calls == [] and task_state(target.task.arn).last_status == "RUNNING"
