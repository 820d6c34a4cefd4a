"""Every change of state and privileged read leaves its event: who, from where, on what.

Each test drives the real path (the login form, the pages, the services, the admin) and looks
for the event by its action; without the `audit_record` call it looks for, it fails.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from ecsportal.accounts import services as accounts_services
from ecsportal.accounts.models import CredentialSource
from ecsportal.approvals import services as approvals_services
from ecsportal.approvals.models import ApprovalRequest, Status
from ecsportal.audit.models import AuditEvent
from ecsportal.stops.services import stop_request

pytestmark = pytest.mark.django_db

ADDRESS = "198.51.100.7"


def _post_login(client: Client, username: str, password: str, address: str = ADDRESS):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def _only(action: str) -> AuditEvent:
    return AuditEvent.objects.get(action=action)


# --- logins ------------------------------------------------------------------------------


def test_a_login_a_failed_login_and_a_logout_are_each_recorded_with_the_address(cast):
    client = Client()
    assert _post_login(client, "viewer", "not-the-password").status_code == 200
    failed = _only("auth.login_failed")
    assert (failed.actor_username, failed.target, failed.source_ip) == ("anonymous", "viewer", ADDRESS)
    assert failed.details == {"locked_out": False}
    assert "not-the-password" not in str(failed.details) + failed.target

    assert _post_login(client, "viewer", cast.password).status_code == 302
    login = _only("auth.login")
    assert (login.actor_id, login.source_ip) == (cast.viewer.pk, ADDRESS)

    assert client.post("/logout/", REMOTE_ADDR=ADDRESS).status_code == 302
    assert _only("auth.logout").actor_id == cast.viewer.pk


def test_a_name_no_user_has_is_not_kept_in_the_trail(cast):
    # Someone types their password into the username box: the trail must not keep it.
    _post_login(Client(), "hunter2-my-password", "x")
    failed = _only("auth.login_failed")
    assert failed.target == "(unknown username)"
    assert not AuditEvent.objects.filter(target__contains="hunter2").exists()


def test_the_admin_login_page_is_the_portals_audited_login(cast):
    client = Client()
    client.post("/admin/login/?next=/admin/", {"username": "admin", "password": "nope"}, REMOTE_ADDR=ADDRESS)
    assert _only("auth.login_failed").target == "admin"


# --- throttling ----------------------------------------------------------------------------


@override_settings(AXES_FAILURE_LIMIT=3, AXES_COOLOFF_TIME=timedelta(minutes=15))
def test_a_username_is_locked_after_too_many_failures_from_any_address_and_says_until_when(cast):
    client = Client()
    for n in range(3):
        _post_login(client, "operator", "wrong", address=f"203.0.113.{n}")
    # The right password from a fresh address is refused too, until the cool-off has passed.
    answer = _post_login(client, "operator", cast.password, address="203.0.113.200")
    assert answer.status_code == 429
    html = answer.content.decode()
    assert "Too many failed logins" in html and "Try again after" in html and "in 15 minutes" in html
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="auth.login_failed", details__locked_out=True).exists()
    assert not AuditEvent.objects.filter(action="auth.login").exists()
    # Another user is not affected.
    assert _post_login(Client(), "viewer", cast.password, address="203.0.113.201").status_code == 302


@override_settings(AXES_FAILURE_LIMIT=3)
def test_an_address_is_locked_after_too_many_failures_whatever_the_usernames(cast):
    for name in ("ghost1", "ghost2", "ghost3"):
        _post_login(Client(), name, "wrong", address="203.0.113.50")
    assert _post_login(Client(), "viewer", cast.password, address="203.0.113.50").status_code == 429
    assert _post_login(Client(), "viewer", cast.password, address="203.0.113.51").status_code == 302


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_successful_login_does_not_wipe_the_failures(cast):
    """Else one valid login, interleaved, would let anyone guess at another account for ever."""
    _post_login(Client(), "approver2", "wrong")
    _post_login(Client(), "approver", "wrong")
    assert _post_login(Client(), "viewer", cast.password).status_code == 302
    _post_login(Client(), "approver2", "wrong")
    assert _post_login(Client(), "viewer", cast.password).status_code == 429  # the address is at its limit


# --- accounts and secrets --------------------------------------------------------------------


def test_a_stored_secret_set_and_removed_are_events_of_their_own_without_the_value(cast):
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETVALUE"
    accounts_services.account_update(
        actor=cast.admin,
        account=cast.staging,
        data={
            "credential_source": CredentialSource.ACCESS_KEY,
            "access_key_id": "AKIAEXAMPLE1",
            "secret_access_key": secret,
        },
        source_ip=ADDRESS,
    )
    event = _only("account.secret_set")
    assert (event.actor_id, event.account_pk, event.source_ip) == (cast.admin.pk, cast.staging.pk, ADDRESS)
    assert event.details == {"access_key_id": "AKIAEXAMPLE1"}
    accounts_services.account_update(
        actor=cast.admin, account=cast.staging, data={"credential_source": CredentialSource.DEFAULT_CHAIN}
    )
    assert _only("account.secret_removed").account_pk == cast.staging.pk
    for row in AuditEvent.objects.all():
        assert secret not in f"{row.target} {row.details}"


def test_membership_changes_through_the_pages_are_recorded(cast, login):
    from ecsportal.accounts.models import Membership, Role

    client = login(cast.admin)
    membership = Membership.objects.get(account=cast.prod, user=cast.viewer)
    client.post(f"/accounts/{cast.prod.pk}/members/{membership.pk}/", {"role": Role.OPERATOR}, REMOTE_ADDR=ADDRESS)
    client.post(f"/accounts/{cast.prod.pk}/members/{membership.pk}/remove/", REMOTE_ADDR=ADDRESS)
    change, remove = _only("membership.change"), _only("membership.remove")
    assert change.target == remove.target == "viewer"
    assert change.source_ip == remove.source_ip == ADDRESS


def test_portal_users_changed_in_the_admin_are_recorded_with_field_names_only(cast, login):
    client = login(cast.admin)
    answer = client.post(
        "/admin/auth/user/add/",
        {
            "username": "newcomer",
            "password1": "a-long-pass-phrase-1",
            "password2": "a-long-pass-phrase-1",
            "usable_password": "true",
        },
        REMOTE_ADDR=ADDRESS,
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    created = _only("user.created")
    assert (created.actor_id, created.target, created.source_ip) == (cast.admin.pk, "newcomer", ADDRESS)
    user = created.actor.__class__.objects.get(username="newcomer")
    client.post(
        f"/admin/auth/user/{user.pk}/password/",
        {"password1": "another-long-phrase-2", "password2": "another-long-phrase-2", "usable_password": "true"},
    )
    changed = _only("user.changed")
    assert changed.target == "newcomer"
    assert "another-long-phrase-2" not in str(changed.details) and "password" in str(changed.details).lower()


# --- approvals and stops ---------------------------------------------------------------------


def test_a_stops_life_is_in_the_trail_with_who_decided_from_where(cast, login, stop_target, stop_calls):
    target = stop_target(cast.operator)
    request = stop_request(actor=cast.operator, target=target, reason="runaway memory", source_ip=ADDRESS)
    answer = login(cast.approver).post(
        f"/approvals/{request.pk}/decide/", {"decision": "approve", "comment": "ok"}, REMOTE_ADDR="192.0.2.44"
    )
    assert answer.status_code in (200, 302)
    asked, approved, executed = (_only(a) for a in ("approval.request", "approval.approve", "approval.executed"))
    assert (asked.actor_id, asked.source_ip) == (cast.operator.pk, ADDRESS)
    assert (approved.actor_id, approved.source_ip, approved.details["comment"]) == (
        cast.approver.pk,
        "192.0.2.44",
        "ok",
    )
    assert executed.details["action"] == "ecs.stop_task"
    assert target.task.arn.rsplit("/", 1)[-1] in executed.target
    assert stop_calls == [target.task.arn]


def test_rejections_and_cancellations_are_recorded(cast, stop_target):
    rejected = stop_request(actor=cast.operator, target=stop_target(cast.operator), reason="a")
    approvals_services.approval_decide(actor=cast.approver, request_pk=rejected.pk, decision="reject")
    cancelled = stop_request(actor=cast.operator, target=stop_target(cast.operator), reason="b")
    approvals_services.approval_cancel(actor=cast.operator, request_pk=cancelled.pk)
    assert _only("approval.reject").details["request"] == rejected.pk
    assert _only("approval.cancel").details["request"] == cancelled.pk


def test_the_sweep_records_a_request_expiring_untouched(cast, stop_target, stop_calls):
    request = stop_request(actor=cast.operator, target=stop_target(cast.operator), reason="c")
    ApprovalRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert approvals_services.approvals_expire_due() == 1
    assert approvals_services.approvals_expire_due() == 0  # once
    assert ApprovalRequest.objects.get(pk=request.pk).status == Status.EXPIRED
    event = _only("approval.expire")
    assert (event.actor_username, event.details["request"]) == ("system", request.pk)
    assert stop_calls == []


# --- reading the trail -----------------------------------------------------------------------


def test_the_csv_export_is_filtered_defused_and_itself_recorded(cast, login):
    from ecsportal.audit.services import audit_record

    audit_record(actor=cast.admin, action="runbook.changed", target='=HYPERLINK("http://x")', account=cast.prod)
    audit_record(actor=cast.admin, action="membership.add", target="viewer", account=cast.staging)
    assert login(cast.viewer).get("/audit/export.csv").status_code == 403
    answer = login(cast.outsider).get("/audit/export.csv")  # admin of another account: none of these
    assert b"".join(answer.streaming_content).decode().count("\n") == 1  # the header alone
    answer = login(cast.admin).get("/audit/export.csv", {"action": "runbook."}, REMOTE_ADDR=ADDRESS)
    assert answer["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(answer.streaming_content).decode())))
    assert rows[0][:6] == ["time", "user", "address", "account", "account_pk", "action"]
    assert [r[5] for r in rows[1:]] == ["runbook.changed"]
    assert rows[1][6] == '\'=HYPERLINK("http://x")'
    exported = AuditEvent.objects.get(action="audit.exported", actor=cast.admin)
    assert (exported.actor_id, exported.source_ip, exported.details) == (cast.admin.pk, ADDRESS, {"action": "runbook."})


def test_time_range_and_free_text_filters(cast, login):
    from ecsportal.audit.services import audit_record

    audit_record(actor=cast.admin, action="account.update", target="Acme Production", account=cast.prod)
    audit_record(
        actor=cast.admin, action="run.requested", target="run #9", account=cast.prod, details={"command": "df -h"}
    )
    client = login(cast.admin)

    def actions(**params: str) -> list[str]:
        html = client.get("/audit/", params, headers={"HX-Request": "true"}).content.decode()
        return [a for a in ("account.update", "run.requested") if f">{a}<" in html]

    assert actions(q="df -h") == ["run.requested"]  # found in the details
    assert actions(q="Acme Prod") == ["account.update", "run.requested"]  # the account's name
    future = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert actions(since=future) == []
    assert actions(until=future) == ["account.update", "run.requested"]
    assert actions(since="not a date") == ["account.update", "run.requested"]  # ignored, never a 500
