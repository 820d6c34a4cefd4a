"""Exactly once, against PostgreSQL with real connections: one StopTask however many click.

Threads share nothing but the database: each opens its own connection and closes it. SQLite
serialises every writer, so it cannot show the race; there the tests skip (and fail under CI).
"""

from __future__ import annotations

import os
import threading

import pytest
from django.db import connection, connections

from ecsportal.approvals import services
from ecsportal.approvals.models import ApprovalDecision, ApprovalRequest, Status
from ecsportal.stops.services import stop_request
from tests.approvals.lab import task_state

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        if os.environ.get("CI") == "true":
            pytest.fail("The exactly-once tests need PostgreSQL under CI=true (set DATABASE_URL).")
        pytest.skip("Exactly-once under concurrency needs PostgreSQL (set DATABASE_URL=postgres://…).")


def _race(workers: list, *, timeout: float = 60) -> list[object]:
    """Start every worker at the same moment; return what each returned or raised."""
    barrier = threading.Barrier(len(workers))
    results: list[object] = [None] * len(workers)

    def run(index: int, work) -> None:
        try:
            barrier.wait()
            results[index] = work()
        except Exception as exc:  # collected and inspected by the test
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    return results


def _approvers(count: int, lab):
    from django.contrib.auth import get_user_model

    from ecsportal.accounts.models import Membership, Role

    users = []
    for n in range(count):
        user = get_user_model().objects.create_user(f"approver-{n:02d}")
        Membership.objects.create(user=user, account=lab, role=Role.APPROVER)
        users.append(user)
    return users


def test_twenty_concurrent_approvals_stop_the_task_exactly_once(cast, lab, stop_target, stop_calls):
    lab.approvals_for_stop = 2
    lab.save()
    request = stop_request(actor=cast.operator, target=stop_target(cast.operator), reason="race")
    approvers = _approvers(20, lab)

    results = _race(
        [lambda u=u: services.approval_decide(actor=u, request_pk=request.pk, decision="approve") for u in approvers]
    )

    request.refresh_from_db()
    assert request.status == Status.EXECUTED
    assert stop_calls == [request.target["task_arn"]]
    assert task_state(request.target["task_arn"]).last_status == "STOPPED"
    # Two approvals were needed; after the claim nobody else's counted.
    assert ApprovalDecision.objects.filter(request=request).count() == 2
    refused = [r for r in results if isinstance(r, services.ApprovalClosed)]
    assert len(refused) == 18
    assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, services.ApprovalClosed)]


def test_a_double_submitted_final_approval_stops_the_task_exactly_once(cast, lab, stop_target, stop_calls):
    request = stop_request(actor=cast.operator, target=stop_target(cast.operator), reason="double click")

    results = _race(
        [lambda: services.approval_decide(actor=cast.approver, request_pk=request.pk, decision="approve")] * 2
    )

    request.refresh_from_db()
    assert request.status == Status.EXECUTED
    assert stop_calls == [request.target["task_arn"]]
    assert ApprovalDecision.objects.filter(request=request).count() == 1
    assert sum(isinstance(r, ApprovalRequest) for r in results) == 1
    assert sum(isinstance(r, services.ApprovalClosed) for r in results) == 1


def test_the_claim_is_a_conditional_update_even_without_the_row_lock(cast, lab, stop_target, stop_calls):
    """Many callers racing straight at the claim (no select_for_update): one wins."""
    request = stop_request(actor=cast.operator, target=stop_target(cast.operator), reason="claim")
    ApprovalDecision.objects.create(request=request, approver=cast.approver, decision="approve")

    def claim() -> bool:
        from django.utils import timezone

        won = (
            ApprovalRequest.objects.filter(pk=request.pk, status=Status.PENDING, expires_at__gt=timezone.now()).update(
                status=Status.EXECUTING
            )
            == 1
        )
        if won:
            services.approval_execute(request_pk=request.pk)
        return won

    results = _race([claim] * 20)

    assert results.count(True) == 1
    assert stop_calls == [request.target["task_arn"]]
    assert ApprovalRequest.objects.get(pk=request.pk).status == Status.EXECUTED
