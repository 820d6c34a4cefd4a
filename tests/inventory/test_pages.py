from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_overview_lists_clusters_of_both_accounts(local_aws, cast, login):
    page = login(cast.viewer).get("/inventory/")
    assert page.status_code == 200
    html = page.content.decode()
    for name in ("prod-web", "prod-batch", "prod-edge", "staging", "staging-eu"):
        assert f">{name}</a>" in html
