"""/session: what live.js asks when its sockets keep being refused before the handshake."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_it_says_401_to_an_ended_session_instead_of_redirecting(client):
    answer = client.get("/session")
    assert answer.status_code == 401
    assert answer["Cache-Control"] == "no-store"
    assert answer.content == b""


def test_it_says_204_while_logged_in(cast, login):
    answer = login(cast.viewer).get("/session")
    assert answer.status_code == 204


def test_it_answers_after_logout_with_401(cast, login):
    client = login(cast.viewer)
    client.post("/logout/")
    assert client.get("/session").status_code == 401


def test_it_only_reads(cast, login):
    assert login(cast.viewer).post("/session").status_code == 405
