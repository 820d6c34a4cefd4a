"""Crafted query strings on every list page: a bad filter value is ignored, never a 500.

Found by hand first (`?account=99999999999999999999999` overflowed the database's integer,
`?account=²` passed `str.isdigit()` and failed `int()`); hypothesis now tries every parameter
of every list page with hostile values.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.django_db

STOPPED = ["account", "region", "cluster", "service", "category", "stop_code", "range", "q", "signature", "sort"]
STOPPED += ["page", "chart"]
PICKER = ["account", "region", "cluster", "task", "container"]
LIST_PAGES = {
    "/": [],
    "/stopped/": STOPPED,
    "/stopped/export.csv": STOPPED,
    "/stopped/export.json": STOPPED,
    "/stopped/status/": ["run"],
    "/approvals/": ["status", "account", "mine", "page"],
    "/approvals/inbox/": [],
    "/audit/": ["account", "action", "actor", "since", "until", "q", "page"],
    "/audit/export.csv": ["account", "action", "actor", "since", "until", "q"],
    "/inventory/pick/": PICKER,
    "/stops/pick/": PICKER,
    "/stops/new/": [*PICKER, "task_arn", "role_arn"],
    "/runs/": ["account", "cluster", "user", "status", "page"],
    "/runs/pick/": PICKER,
    "/runs/new/": [*PICKER, "role_arn", "command"],
    "/runbooks/{runbook}/": [*PICKER, "opt_token"],
    "/runbooks/{runbook}/pick/": PICKER,
    "/inventory/{prod}/eu-west-1/prod-web/": ["service"],
}
NASTY = [
    "99999999999999999999999",
    "-1",
    "0",
    "²",
    "١",
    "1e9",
    " 1",
    "1.5",
    "NaN",
    "\x00",
    "%",
    "' OR 1=1 --",
    "\u202e",
    "-stopped_at",
    "a" * 3000,
]
values = st.one_of(
    st.sampled_from(NASTY),
    st.integers().map(str),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
)


def _queries(names: list[str]) -> st.SearchStrategy[dict[str, str]]:
    if not names:
        return st.just({})
    return st.dictionaries(st.sampled_from(names), values, max_size=len(names))


@pytest.mark.parametrize("path", list(LIST_PAGES))
def test_no_query_string_makes_a_list_page_fail(local_aws, cast, login, path):
    client = login(cast.admin)
    from ecsportal.runbooks.models import Runbook

    runbook = Runbook.objects.filter(name="Fingerprint a token").values_list("pk", flat=True).first()
    names = LIST_PAGES[path]
    path = path.format(runbook=runbook, prod=cast.prod.pk)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(query=_queries(names))
    def visit(query: dict[str, str]) -> None:
        answer = client.get(path, query)
        if answer.streaming:
            b"".join(answer.streaming_content)
        assert answer.status_code == 200, (path, query, answer.status_code)

    visit()


@pytest.mark.parametrize(
    "url",
    [
        "/stopped/?account=99999999999999999999999",
        "/approvals/?account=99999999999999999999999",
        "/audit/?account=%C2%B2",
        "/stopped/status/?run=%C2%B2",
        "/runs/?account=%C2%B2",
        "/runs/?account=99999999999999999999999",
    ],
)
def test_the_reported_crafted_links_open_the_page_unfiltered(cast, login, url):
    assert login(cast.admin).get(url).status_code == 200


def test_a_bad_value_drops_only_itself(cast, login):
    from ecsportal.approvals.forms import RequestFilterForm
    from ecsportal.ui.forms import valid_filters

    found = valid_filters(RequestFilterForm({"account": "²", "status": "pending", "mine": "on"}))
    assert found == {"status": "pending", "mine": True}


@pytest.mark.parametrize("path", ["/stopped/99999999999999999999999/", "/approvals/99999999999999999999999/"])
def test_a_crafted_row_id_is_not_found(cast, login, path):
    assert login(cast.admin).get(path).status_code == 404


def test_a_crafted_account_on_the_inventory_is_not_found(cast, login):
    assert login(cast.admin).get("/inventory/?account=99999999999999999999999").status_code == 404
