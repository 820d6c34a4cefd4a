"""Hostile input on every form that reaches AWS: a form error or a valid call, never a 500.

hypothesis fills each field with a valid value, a crafted one (ARNs of other accounts and
partitions, numbers the database cannot hold, control and bidi characters, SQL, very long
text) or arbitrary text, and posts the form through Django's test client, which raises any
exception the view lets through. The list filters are fuzzed in tests/test_query_strings.py.
The example counts are kept small for the suite's sake; the crafted values are what matter.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.urls import resolve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecsportal.accounts.models import Membership, Role
from ecsportal.approvals.models import ApprovalRequest
from ecsportal.demo import localaws
from ecsportal.runbooks.models import Runbook
from ecsportal.runs.models import Run
from tests.runbooks.test_views import task_id

pytestmark = pytest.mark.django_db

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# A form error (re-rendered form, 4xx refusal) or a valid call (a redirect to what it made).
FINE = {200, 302, 400, 403, 404, 409, 422}

A, B = localaws.ACCOUNT_A, localaws.ACCOUNT_B
CRAFTED = [
    "",
    " ",
    "99999999999999999999999",
    "-1",
    "0",
    "²",
    "١٢",
    "1e9",
    "NaN",
    "\x00",
    "\x1b[31m",
    "a\nb",
    "\u202eevil",
    "' OR 1=1 --",
    "%s%n",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "a" * 3000,
    "*",
    "arn:aws:ecs:eu-west-1:{A}:task/prod-web/0123456789abcdef0123456789abcdef",
    "arn:aws:ecs:eu-west-1:{B}:task/staging/0123456789abcdef",
    "arn:aws:ecs:eu-west-1:999999999999:task/x/y",
    "arn:aws:ecs:eu-west-1:99999999999999999999:task/x/y",
    "arn:aws:ecs:us-gov-west-1:{A}:task/prod-web/abc",
    "arn:aws-cn:ecs:cn-north-1:{A}:task/prod-web/abc",
    "arn:aws:ecs:eu-west-1:{A}:task/abc",
    "arn:aws:ecs:eu-west-1:{A}:task/prod-web/",
    "arn:aws:ecs:::task//",
    "arn:aws:ecs:eu-west-1:{A}:cluster/prod-web",
    "arn:aws:iam::{B}:role/ecsportal-readonly",
    "arn:aws:iam::{B}:role/../admin",
    "arn:aws:iam::{A}:role/" + "r" * 2100,
    "arn:aws:iam:::role/",
    "eu-west-1\n",
    "EU-WEST-1",
    "us-east-1",
    "xx-nowhere-9",
]
CRAFTED = [c.replace("{A}", A).replace("{B}", B) for c in CRAFTED]
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
HOSTILE = st.one_of(st.sampled_from(CRAFTED), ANY_TEXT)


def near(valid: dict[str, str], **values: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, str]]:
    """A valid submission with up to three fields replaced by hostile values (or by the given
    strategies for those fields). The empty replacement comes first, so every test also makes
    the valid call; the others test each field against otherwise valid data, where a missed
    check would reach AWS or the database."""

    def value(name: str) -> st.SearchStrategy[str]:
        return st.one_of(values[name], HOSTILE) if name in values else HOSTILE

    changes = st.lists(st.sampled_from(sorted(valid)), max_size=3, unique=True).flatmap(
        lambda names: st.fixed_dictionaries({name: value(name) for name in names})
    )
    return changes.map(lambda changed: {**valid, **changed})


class Outcomes:
    """The status codes seen: each test checks it made valid calls and met refusals."""

    def __init__(self) -> None:
        self.codes: set[int] = set()

    def post(self, client, path: str, data: dict[str, str], *, lands_on: str = "", made_by=None):
        """POST; a valid call (302) must land under `lands_on`, and what it made must be within
        `made_by`'s reach (assert_made_within_reach) when a user is given."""
        answer = client.post(path, data)
        assert answer.status_code in FINE, (path, data, answer.status_code)
        self.codes.add(answer.status_code)
        if answer.status_code == 302:
            assert answer["Location"].startswith(lands_on), answer["Location"]
            if made_by is not None:
                assert_made_within_reach(made_by, answer)
        return answer

    def check(self) -> None:
        assert 302 in self.codes, f"no valid call was made: {self.codes}"
        assert self.codes - {302}, f"nothing was refused: {self.codes}"


def assert_made_within_reach(user, answer) -> None:
    """A valid call's redirect names what it made (a run, or the approval a stop waits on); that
    belongs to an account where `user` is at least an operator, its task is in that account's AWS
    account, and a role override is one that account allows: a crafted ARN, or another account's
    task under this account's pk, never gets through."""
    match = resolve(urlsplit(answer["Location"]).path)
    if match.view_name == "runs:detail":
        made = Run.objects.select_related("account", "approval").get(pk=match.kwargs["pk"])
        task_arn, role_arn = made.task_arn, made.role_arn
        if made.approval is not None:
            assert made.approval.account_id == made.account_id
            assert made.approval.target.get("task_arn", task_arn) == task_arn
    elif match.view_name == "approvals:detail":
        made = ApprovalRequest.objects.select_related("account").get(pk=match.kwargs["pk"])
        task_arn, role_arn = made.target["task_arn"], made.target.get("role_arn", "")
    else:
        raise AssertionError(f"a valid call led to {answer['Location']}, not to a run or an approval")
    account = made.account
    assert Membership.objects.filter(user=user, account=account, role__gte=Role.OPERATOR).exists(), (
        f"{user} made {made} on {account}, where they are not an operator"
    )
    assert task_arn, made
    if task_arn.startswith("arn:"):
        assert task_arn.split(":")[4] == account.account_id, (task_arn, account.account_id)
    if role_arn:
        assert role_arn == account.role_arn or role_arn in (account.allowed_role_arns or []), role_arn


@pytest.fixture
def targets(local_aws, cast):
    task = task_id(cast, "prod-web", "web")
    return {
        "accounts": [str(cast.staging.pk), str(cast.other.pk)],
        "task": task,
        "arn": f"arn:aws:ecs:eu-west-1:{A}:task/prod-web/{task}",
    }


def test_the_stop_form_never_fails(cast, login, targets):
    client, seen = login(cast.operator), Outcomes()
    picked = {
        "account": str(cast.prod.pk),
        "region": "eu-west-1",
        "cluster": "prod-web",
        "task": targets["task"],
        "task_arn": "",
        "role_arn": "",
        "reason": "it is stuck",
        "break_glass": "",
        "break_glass_reason": "",
        "confirmed": "1",  # the review step's confirmation; without it the form shows what will happen
    }

    @FUZZ
    @given(
        data=st.one_of(
            near(picked, account=st.sampled_from(targets["accounts"]), confirmed=st.sampled_from(["", "0"])),
            near({**picked, "account": "", "task": "", "task_arn": targets["arn"]}, task_arn=st.sampled_from(CRAFTED)),
        )
    )
    def post(data: dict[str, str]) -> None:
        seen.post(client, "/stops/new/", data, lands_on="/approvals/", made_by=cast.operator)

    post()
    seen.check()


def test_the_run_form_never_fails(cast, login, targets):
    client, seen = login(cast.operator), Outcomes()
    valid = {
        "account": str(cast.prod.pk),  # production: a valid run waits for approval, nothing runs
        "region": "eu-west-1",
        "cluster": "prod-web",
        "task": targets["task"],
        "container": "app",
        "role_arn": "",
        "command": "echo hi",
        "raw": "",
        "reason": "checking",
    }

    @FUZZ
    @given(
        data=near(
            valid,
            account=st.sampled_from(targets["accounts"]),
            task=st.just(targets["arn"]),
            container=st.just("sidecar"),
            raw=st.just("on"),
        )
    )
    def post(data: dict[str, str]) -> None:
        seen.post(client, "/runs/new/", data, lands_on="/runs/", made_by=cast.operator)

    post()
    seen.check()


def test_runbook_values_never_fail(cast, login, targets):
    book = Runbook.objects.create(
        name="Fuzzed",
        command_template="printf '%s|' {word} {count} {colour} {verbose}",
        cluster_pattern="prod-*, staging",
    )
    book.accounts.set([cast.prod, cast.staging])
    book.options.create(name="word", position=0, pattern=r"[a-z][a-z0-9-]{0,20}")
    book.options.create(name="count", position=1, kind="integer", default="3", min_value=1, max_value=10)
    book.options.create(name="colour", position=2, kind="choice", choices=["red", "green"], required=False)
    book.options.create(name="verbose", position=3, kind="boolean", flag="--verbose", required=False)
    client, seen = login(cast.operator), Outcomes()
    valid = {
        "account": str(cast.prod.pk),
        "region": "eu-west-1",
        "cluster": "prod-web",
        "task": targets["task"],
        "container": "app",
        "opt_word": "web-1",
        "opt_count": "3",
        "opt_colour": "red",
        "opt_verbose": "on",
        "reason": "",
    }

    @FUZZ
    @given(
        data=near(
            valid,
            opt_count=st.integers().map(str),
            opt_colour=st.sampled_from(["green", "", "blue", "RED"]),
            opt_verbose=st.sampled_from(["", "true", "false", "0", "off"]),
            opt_word=st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
        )
    )
    def post(data: dict[str, str]) -> None:
        seen.post(client, f"/runbooks/{book.pk}/", data, lands_on="/runs/", made_by=cast.operator)

    post()
    seen.check()


def test_the_account_form_never_fails(cast, login, local_aws):
    client, seen = login(cast.admin), Outcomes()
    names = iter(range(10_000))
    valid = {
        "account_id": B,
        "regions": "eu-west-1 us-east-1",
        "credential_source": "default",
        "access_key_id": "",
        "secret_access_key": "",
        "role_arn": localaws.ROLE_B,
        "external_id": localaws.EXTERNAL_ID_B,
        "session_name": "ecsportal",
        "session_duration": "3600",
        "allowed_role_arns": localaws.ROLE_B_READONLY,
        "approvals_for_stop": "1",
    }

    @FUZZ
    @given(
        data=near(
            valid,
            account_id=st.sampled_from([A, "111122223333", "12345678901", "1234567890123"]),
            credential_source=st.sampled_from(["keys", "nope"]),
            access_key_id=st.just("AKIAFUZZ000000000001"),
            secret_access_key=st.just("fuzz/secret+key"),
            role_arn=st.sampled_from(["", f"arn:aws:iam::{A}:role/x", "arn:aws:iam::123:role/x"]),
            regions=st.sampled_from(["eu-west-1,us-east-1", "eu-west-1  ", "eu-west-1 eu-west-1"]),
            session_duration=st.sampled_from(["899", "43201", "900"]),
        )
    )
    def create(data: dict[str, str]) -> None:
        seen.post(client, "/accounts/new/", {"name": f"Fuzzed {next(names)}", **data}, lands_on="/accounts/")

    create()
    seen.check()

    # The same on an existing account's edit page, where a blank secret keeps the stored one.
    @FUZZ
    @given(data=near({"name": "Acme Staging", **valid}))
    def edit(data: dict[str, str]) -> None:
        seen.post(client, f"/accounts/{cast.staging.pk}/edit/", data)

    edit()


# The crafted values shaped like what these fields take (ARNs, IDs), plus the few that broke
# parsers elsewhere; hypothesis covers the rest.
SWEPT = [v for v in CRAFTED if v.startswith("arn:")]
SWEPT += ["", "²", "99999999999999999999999", "-1", "\x00", "eu-west-1\n", "a" * 3000]
SWEEP = {
    "/stops/new/": ("account", "region", "cluster", "task", "task_arn", "role_arn"),
    "/runs/new/": ("account", "region", "cluster", "task", "container", "role_arn"),
}


@pytest.mark.parametrize("path", list(SWEEP))
def test_every_crafted_value_in_every_id_and_arn_field(cast, login, targets, path):
    """Not left to chance: each crafted value once in each field that names an AWS resource."""
    client = login(cast.operator)
    valid = {
        "account": str(cast.prod.pk),
        "region": "eu-west-1",
        "cluster": "prod-web",
        "task": targets["task"],
        "container": "app",
        "task_arn": "",
        "role_arn": "",
        "command": "echo hi",
        "reason": "checking",
    }
    for name in SWEEP[path]:
        for value in SWEPT:
            answer = client.post(path, {**valid, name: value})
            assert answer.status_code in FINE, (path, name, value, answer.status_code)
            if answer.status_code == 302:
                assert_made_within_reach(cast.operator, answer)
