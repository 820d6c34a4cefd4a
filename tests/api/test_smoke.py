from __future__ import annotations

import pytest

from tests.api.conftest import make_token

pytestmark = pytest.mark.django_db


def test_it_lists_accounts_and_tasks(cast, local_aws, bearer):
    api = bearer(make_token(cast.operator))
    r = api.get("/api/v1/accounts")
    assert r.status_code == 200, r.content
    print(r.json())
    r = api.get(f"/api/v1/accounts/{cast.prod.pk}/clusters")
    print(r.status_code, r.json()[:2])
    r = api.get("/api/v1/openapi.json")
    assert r.status_code == 200, r.content
    print(list(r.json()["paths"]))
