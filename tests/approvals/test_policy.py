from __future__ import annotations

import pytest

from ecsportal.accounts.models import AwsAccount
from ecsportal.approvals.policy import approvals_required

pytestmark = pytest.mark.django_db


def test_commands_need_one_approval_on_production_and_none_elsewhere_by_default(cast):
    assert approvals_required(account=cast.prod, policy="command") == 1
    assert approvals_required(account=cast.staging, policy="command") == 0
    cast.staging.approvals_for_commands = 2
    assert approvals_required(account=cast.staging, policy="command") == 2


def test_stops_and_runbooks_need_one_approval_by_default(cast):
    assert approvals_required(account=cast.staging, policy="stop") == 1
    assert approvals_required(account=cast.staging, policy="runbook") == 1


def test_an_account_admin_sets_the_policy_on_the_account_form(cast, login):
    client = login(cast.admin)
    form = client.get(f"/accounts/{cast.staging.pk}/edit/").content.decode()
    assert 'name="approvals_for_stop"' in form and 'name="approval_ttl_minutes"' in form
    data = {
        "name": cast.staging.name,
        "account_id": cast.staging.account_id,
        "regions": " ".join(cast.staging.regions),
        "credential_source": cast.staging.credential_source,
        "role_arn": cast.staging.role_arn,
        "external_id": cast.staging.external_id,
        "session_name": cast.staging.session_name,
        "session_duration": cast.staging.session_duration,
        "allowed_role_arns": "\n".join(cast.staging.allowed_role_arns),
        "approvals_for_stop": "2",
        "approvals_for_commands": "",
        "approvals_for_runbooks": "1",
        "approval_ttl_minutes": "30",
    }
    answer = client.post(f"/accounts/{cast.staging.pk}/edit/", data)
    assert answer.status_code == 302, answer.content.decode()[:2000]
    staging = AwsAccount.objects.get(pk=cast.staging.pk)
    assert (staging.approvals_for_stop, staging.approvals_for_commands, staging.approval_ttl_minutes) == (2, None, 30)


def test_an_action_registers_its_policy_by_name_or_by_choice():
    from ecsportal.approvals import registry
    from ecsportal.approvals.policy import Policy

    noop = lambda request: registry.Outcome(True, "")  # noqa: E731
    try:
        registry.register("test.command", noop, lambda r: [], label="Test command", policy="command")
        registry.register("test.runbook", noop, lambda r: [], label="Test runbook", policy=Policy.RUNBOOK)
        assert registry.get("test.command").policy is Policy.COMMAND
        assert registry.get("test.runbook").policy is Policy.RUNBOOK
    finally:
        registry._actions.pop("test.command", None)
        registry._actions.pop("test.runbook", None)
    with pytest.raises(ValueError, match="unknown approval policy"):
        registry.register("test.other", noop, lambda r: [], label="Other", policy="deploy")
