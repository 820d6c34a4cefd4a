"""The account form's shell policy: defaults, clear errors, and what an account admin may set."""

from __future__ import annotations

import html

import pytest

from ecsportal.accounts.models import AwsAccount, ShellAccess
from ecsportal.audit.models import AuditEvent
from tests.accounts.test_forms import BASE

pytestmark = pytest.mark.django_db


def _post(client, url: str, **changes: str):
    return client.post(url, {**BASE, **changes}, headers={"HX-Request": "true"})


def test_a_new_account_gets_the_defaults(cast):
    """The form left as it comes (the shell fields untouched), saved as the view saves it."""
    from ecsportal.accounts.forms import AccountForm
    from ecsportal.accounts.services import account_create

    form = AccountForm(BASE)
    assert form.is_valid(), form.errors
    account = account_create(actor=cast.admin, data=form.cleaned_data)
    assert account.shell_access == "" and account.effective_shell_access == ShellAccess.OPERATORS
    assert (account.shell_idle_minutes, account.shell_max_minutes) == (15, 60)
    assert account.shell_command == "auto" and not account.shell_record_input and not account.shell_moderated
    assert account.approvals_for_shell == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"shell_command": "bash; rm -rf /"}, "not ';'"),
        ({"shell_command": "sh -c `id`"}, "'`'"),
        ({"shell_command": "-l"}, "Start with the program"),
        ({"shell_idle_minutes": "0"}, "greater than or equal to 1"),
        ({"shell_max_minutes": "721"}, "less than or equal to 720"),
        ({"shell_idle_minutes": "90", "shell_max_minutes": "60"}, "cannot be longer than the longest session (60 min)"),
        ({"shell_access": "everyone"}, "Select a valid choice"),
        ({"approvals_for_shell": "9"}, "less than or equal to 5"),
    ],
)
def test_bad_shell_settings_are_refused_with_a_clear_message(cast, login, changes, message):
    answer = _post(login(cast.admin), "/accounts/new/", **changes)
    assert answer.status_code == 200
    assert message in html.unescape(answer.content.decode())
    assert not AwsAccount.objects.filter(name=BASE["name"]).exists()


def test_an_account_admin_sets_the_policy_and_the_change_is_audited(cast, login):
    prod = cast.prod
    assert prod.effective_shell_access == ShellAccess.REQUEST  # the demo's production account
    client = login(cast.admin)
    page = html.unescape(client.get(f"/accounts/{prod.pk}/edit/").content.decode())
    assert "Interactive shells" in page and "Record what is typed into shells" in page
    data = {
        "name": prod.name,
        "account_id": prod.account_id,
        "regions": " ".join(prod.regions),
        "credential_source": prod.credential_source,
        "role_arn": prod.role_arn,
        "allowed_role_arns": "\n".join(prod.allowed_role_arns),
        "session_name": prod.session_name,
        "session_duration": str(prod.session_duration),
        "is_production": "on",
        "shell_access": "request",
        "shell_moderated": "on",
        "shell_record_input": "on",
        "shell_command": "/bin/ash -l",
        "shell_idle_minutes": "10",
        "shell_max_minutes": "30",
        "approvals_for_shell": "2",
    }
    answer = client.post(f"/accounts/{prod.pk}/edit/", data)
    assert answer.status_code == 302, html.unescape(answer.content.decode())[:2000]
    prod.refresh_from_db()
    assert (prod.shell_access, prod.shell_moderated, prod.shell_record_input) == ("request", True, True)
    assert (prod.shell_command, prod.shell_idle_minutes, prod.shell_max_minutes) == ("/bin/ash -l", 10, 30)
    assert prod.approvals_for_shell == 2
    event = AuditEvent.objects.filter(action="account.update").latest("pk")
    assert "shell_record_input" in str(event.details)


def test_the_account_page_states_the_shell_policy(cast, login):
    page = html.unescape(login(cast.viewer).get(f"/accounts/{cast.prod.pk}/").content.decode())
    assert "Access request: an approved, time-boxed grant per target (the default)" in page
    assert "typed input not recorded" in page and "idle 15 min, at most 60 min" in page
