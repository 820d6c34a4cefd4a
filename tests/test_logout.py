"""Logging out: a POST; a typed /logout/ asks first."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model


@pytest.mark.django_db
def test_a_typed_logout_url_asks_before_logging_out(client):
    user = get_user_model().objects.create_user("carol", password="pw-for-tests")
    client.force_login(user)
    page = client.get("/logout/")
    assert page.status_code == 200
    assert b'action="/logout/"' in page.content
    assert client.get("/").status_code == 200  # still logged in
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302  # now sent to the login page
