"""The revocation sweep's cost: one round reads the same three queries for any number of sockets."""

from __future__ import annotations

import pytest

from ecsportal.accounts.models import Membership
from tests.cookies import logged_in

pytestmark = pytest.mark.django_db


def test_a_sweep_round_reads_three_queries_whatever_the_number_of_sockets(cast, django_assert_num_queries):
    from ecsportal.accounts.revocation import _facts

    users = [cast.viewer, cast.operator, cast.approver, cast.approver2]
    keys = set()
    for user in users:
        _, cookie = logged_in(user)
        keys.add(cookie.split("=", 1)[1])
    with django_assert_num_queries(3):
        fingerprints, live = _facts({u.pk for u in users}, keys)
    assert set(fingerprints) == {u.pk for u in users} and live == keys
    assert fingerprints[cast.viewer.pk][2] == frozenset(
        Membership.objects.filter(user=cast.viewer).values_list("account_id", "role")
    )
