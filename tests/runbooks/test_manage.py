"""The management pages: who may see and change which runbooks, and that every change is audited."""

from __future__ import annotations

import pytest

from ecsportal.accounts.models import Membership, Role
from ecsportal.audit.models import AuditEvent
from ecsportal.runbooks.models import Runbook

pytestmark = pytest.mark.django_db


def _form(picked, **fields):
    data = {
        "name": "Grep a log",
        "description": "",
        "accounts": [str(a.pk) for a in picked],
        "cluster_pattern": "prod-*",
        "container_pattern": "",
        "command_template": "grep -c -- {needle} {path}",
        "mode": "shell",
        "is_enabled": "on",
        "options-TOTAL_FORMS": "2",
        "options-INITIAL_FORMS": "0",
        "options-MIN_NUM_FORMS": "0",
        "options-MAX_NUM_FORMS": "1000",
        "options-0-name": "needle",
        "options-0-kind": "text",
        "options-0-required": "on",
        "options-1-name": "path",
        "options-1-kind": "choice",
        "options-1-choices_text": "/var/log/a.log\n/var/log/b.log",
        "options-1-required": "on",
    }
    data.update(fields)
    return data


def test_anonymous_users_are_sent_to_log_in(client):
    for url in ("/runbooks/manage/", "/runbooks/manage/new/"):
        answer = client.get(url)
        assert answer.status_code == 302 and answer["Location"].startswith("/login/")


@pytest.mark.parametrize("who", ["viewer", "operator", "approver"])
def test_members_who_administer_no_account_may_not_manage(cast, login, who):
    client = login(getattr(cast, who))
    assert client.get("/runbooks/manage/").status_code == 403
    assert client.post("/runbooks/manage/new/", _form([cast.prod])).status_code == 403
    assert not Runbook.objects.filter(name="Grep a log").exists()


def test_a_portal_admin_creates_a_runbook_and_it_is_audited_per_account(cast, login):
    answer = login(cast.admin).post("/runbooks/manage/new/", _form([cast.prod, cast.staging]))

    assert answer.status_code == 302 and answer["Location"] == "/runbooks/manage/"
    runbook = Runbook.objects.get(name="Grep a log")
    assert [o.name for o in runbook.options.all()] == ["needle", "path"]
    assert runbook.options.get(name="path").choices == ["/var/log/a.log", "/var/log/b.log"]
    events = AuditEvent.objects.filter(action="runbook.created", target="Grep a log")
    assert sorted(e.account_name for e in events) == ["Acme Production", "Acme Staging"]
    assert all(e.actor_username == "admin" for e in events)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"command_template": "grep -c -- {needle} {path} {extra}"}, "No option for {extra}"),
        ({"command_template": "grep -c -- {needle}"}, "Option path is not used"),
        ({"command_template": "grep -c -- '{needle}' {path}"}, "inside quotes"),
        ({"command_template": "grep -c -- x{needle} {path}"}, "a word of its own"),
        ({"options-1-choices_text": ""}, "at least one value"),
        ({"options-0-pattern": "[unclosed"}, "Not a valid regular expression"),
        ({"options-0-name": "Needle"}, "Lowercase letters"),
        ({"options-1-name": "needle"}, "duplicate data for name"),
        ({"options-0-secret": "on", "options-0-default": "hunter2"}, "A secret has no default"),
        ({"options-1-default": "/etc/passwd"}, "does not fit"),
        ({"accounts": []}, "Pick at least one account"),
        ({"options-1-choices_text": "/var/log/a\x1b[2J.log"}, "Control characters are not allowed"),
        ({"command_template": "cat <<EOF\n{needle} {path}\nEOF"}, "Here-documents"),
    ],
)
def test_a_runbook_that_cannot_work_is_a_form_error_with_what_was_typed(cast, login, fields, message):
    answer = login(cast.admin).post("/runbooks/manage/new/", _form([cast.prod], **fields))

    html = answer.content.decode()
    assert answer.status_code == 422
    assert message in html.replace("&#x27;", "'")
    assert "Grep a log" in html  # the name typed is still there
    assert not Runbook.objects.exists() or not Runbook.objects.filter(name="Grep a log").exists()


def _make_account_admin(cast):
    Membership.objects.filter(user=cast.approver, account=cast.prod).update(role=Role.ADMIN)
    return cast.approver


def test_an_account_admin_manages_only_runbooks_within_their_accounts(cast, login):
    admin = _make_account_admin(cast)
    mine = Runbook.objects.create(name="Prod only", command_template="uptime")
    mine.accounts.set([cast.prod])
    shared = Runbook.objects.create(name="Both accounts", command_template="uptime")
    shared.accounts.set([cast.prod, cast.staging])
    client = login(admin)

    page = client.get("/runbooks/manage/").content.decode()
    assert "Prod only" in page and "Both accounts" not in page
    assert client.get(f"/runbooks/manage/{mine.pk}/").status_code == 200
    assert client.get(f"/runbooks/manage/{shared.pk}/").status_code == 404
    assert client.post(f"/runbooks/manage/{shared.pk}/delete/").status_code == 404
    assert client.post(f"/runbooks/manage/{shared.pk}/enabled/", {"enabled": "0"}).status_code == 404
    assert Runbook.objects.filter(pk=shared.pk, is_enabled=True).exists()


def test_an_account_admin_cannot_add_an_account_they_do_not_administer(cast, login):
    admin = _make_account_admin(cast)
    answer = login(admin).post("/runbooks/manage/new/", _form([cast.prod, cast.staging]))

    assert answer.status_code == 422
    assert "Select a valid choice" in answer.content.decode()
    assert login(admin).post("/runbooks/manage/new/", _form([cast.prod])).status_code == 302


def test_an_outsider_cannot_touch_runbooks_of_other_accounts(cast, login, echo_book):
    client = login(cast.outsider)  # admin of "Other Team" only
    assert client.get("/runbooks/manage/").status_code == 200
    assert "Echo" not in client.get("/runbooks/manage/").content.decode()
    assert client.get(f"/runbooks/manage/{echo_book.pk}/").status_code == 404
    assert client.post(f"/runbooks/manage/{echo_book.pk}/delete/").status_code == 404
    assert Runbook.objects.filter(pk=echo_book.pk).exists()


def test_editing_records_what_changed(cast, login, echo_book):
    client = login(cast.admin)
    page = client.get(f"/runbooks/manage/{echo_book.pk}/")
    assert page.status_code == 200
    data = _form(
        [cast.prod],
        name="Echo",
        cluster_pattern="",
        command_template="printf '%s|' {message} {count}",
        **{
            "options-TOTAL_FORMS": "2",
            "options-INITIAL_FORMS": "2",
            "options-0-id": str(echo_book.options.get(name="message").pk),
            "options-0-name": "message",
            "options-0-kind": "text",
            "options-1-id": str(echo_book.options.get(name="count").pk),
            "options-1-name": "count",
            "options-1-kind": "integer",
            "options-1-default": "5",
            "options-1-choices_text": "",
        },
    )

    assert client.post(f"/runbooks/manage/{echo_book.pk}/", data).status_code == 302

    echo_book.refresh_from_db()
    assert list(echo_book.accounts.all()) == [cast.prod]
    assert echo_book.options.get(name="count").default == "5"
    events = AuditEvent.objects.filter(action="runbook.changed", target="Echo")
    assert sorted(e.account_name for e in events) == ["Acme Production", "Acme Staging"]  # old and new accounts
    assert set(events[0].details["fields"]) >= {"accounts", "options"}


def test_disabling_hides_it_from_operators_and_deleting_removes_it(cast, login, echo_book):
    client = login(cast.admin)
    assert client.post(f"/runbooks/manage/{echo_book.pk}/enabled/", {"enabled": "0"}).status_code == 302
    assert f"/runbooks/{echo_book.pk}/" not in login(cast.operator).get("/runbooks/").content.decode()
    assert login(cast.operator).get(f"/runbooks/{echo_book.pk}/").status_code == 404

    client = login(cast.admin)
    assert client.get(f"/runbooks/manage/{echo_book.pk}/delete/").status_code == 200
    assert client.post(f"/runbooks/manage/{echo_book.pk}/delete/").status_code == 302
    assert not Runbook.objects.filter(pk=echo_book.pk).exists()
    assert AuditEvent.objects.filter(action="runbook.deleted", target="Echo").count() == 2
    assert AuditEvent.objects.filter(action="runbook.changed", details__is_enabled=False).exists()


def test_the_django_admin_shows_runbooks_but_cannot_change_them(cast, login, echo_book):
    client = login(cast.admin)
    page = client.get(f"/admin/runbooks/runbook/{echo_book.pk}/change/")
    assert page.status_code == 200 and "printf" in page.content.decode()
    answer = client.post(
        f"/admin/runbooks/runbook/{echo_book.pk}/change/", {"name": "Renamed", "command_template": "id"}
    )
    assert answer.status_code == 403
    assert client.post(f"/admin/runbooks/runbook/{echo_book.pk}/delete/", {"post": "yes"}).status_code == 403
    echo_book.refresh_from_db()
    assert echo_book.name == "Echo"


@pytest.mark.parametrize("count", ["9" * 400, "2001", "31"])
def test_a_huge_option_count_is_a_form_error_not_thousands_of_forms(cast, login, count):
    answer = login(cast.admin).post("/runbooks/manage/new/", _form([cast.prod], **{"options-TOTAL_FORMS": count}))
    assert answer.status_code == 422
    assert len(answer.content) < 200_000  # the page with two options is ~30 KB; 2,000 forms were 9.4 MB
    assert "Please submit at most 30 forms." in answer.content.decode()
    assert not Runbook.objects.filter(name="Grep a log").exists()


def test_a_runbook_with_the_most_options_allowed_is_saved(cast, login):
    names = [f"opt{i}" for i in range(30)]
    fields = {"options-TOTAL_FORMS": "30", "command_template": "echo " + " ".join(f"{{{n}}}" for n in names)}
    for i, name in enumerate(names):
        fields |= {f"options-{i}-name": name, f"options-{i}-kind": "text", f"options-{i}-required": "on"}
    answer = login(cast.admin).post("/runbooks/manage/new/", _form([cast.prod], **fields))
    assert answer.status_code == 302
    assert Runbook.objects.get(name="Grep a log").options.count() == 30


def test_over_htmx_a_form_error_swaps_the_form_in_place_and_saving_redirects(cast, login):
    client = login(cast.admin)
    refused = client.post("/runbooks/manage/new/", _form([cast.prod], accounts=[]), HTTP_HX_REQUEST="true")
    html = refused.content.decode()
    assert refused.status_code == 422
    assert html.lstrip().startswith("<form") and 'id="runbook-form"' in html and "<!doctype" not in html
    assert 'hx-post="/runbooks/manage/new/"' in html and "Pick at least one account" in html
    assert 'value="Grep a log"' in html

    saved = client.post("/runbooks/manage/new/", _form([cast.prod]), HTTP_HX_REQUEST="true")
    assert saved.status_code == 200 and saved["HX-Redirect"] == "/runbooks/manage/"
    assert Runbook.objects.filter(name="Grep a log").exists()
