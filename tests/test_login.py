"""The login form against hostile input: each a refusal on the page, never a 500, on SQLite and
on PostgreSQL (which refuses NUL in text and strings past a column's length outright)."""

from __future__ import annotations

import pytest

from ecsportal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "username",
    [
        "oper\x00ator",
        "\x00",
        "a" * 256,
        "b" * 5000,
        "operator" + "\x00" * 300,
    ],
    ids=["nul-inside", "nul-alone", "256-chars", "5000-chars", "nul-and-long"],
)
def test_a_hostile_username_is_a_refused_login_not_a_server_error(client, cast, username):
    answer = client.post("/login/", {"username": username, "password": "wrong"})
    assert answer.status_code == 200
    assert b"Please enter a correct username and password" in answer.content
    assert "_auth_user_id" not in client.session
    failed = AuditEvent.objects.get(action="auth.login_failed")
    assert failed.target == "(unknown username)"


def test_a_nul_in_the_password_is_a_refused_login(client, cast):
    answer = client.post("/login/", {"username": "operator", "password": "pass\x00word"})
    assert answer.status_code == 200 and "_auth_user_id" not in client.session
