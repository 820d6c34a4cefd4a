"""The API's refusals for every operation (no token, expired, revoked, unknown, wrong scope),
its problem+json answers, throttling, audit naming the token, and what it starts."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from django.test import Client

from ecsportal.accounts.models import Role
from ecsportal.apitokens.models import ApiToken
from ecsportal.apitokens.services import token_revoke
from ecsportal.approvals.models import ApprovalRequest
from ecsportal.audit.models import AuditEvent
from ecsportal.batches.models import Batch, BatchStatus, BatchTarget, TargetState
from ecsportal.runs.models import Run, RunChunk, RunStatus
from tests.api.conftest import expire, make_service_token, make_token
from tests.runs.lab import stored_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(cast, local_aws):
    from tests.stopped.helpers import row

    run = stored_run(account=cast.prod, requested_by=cast.operator, status=RunStatus.FAILED, exit_code=3)
    RunChunk.objects.create(run=run, seq=1, offset=0.0, data=b"hello\n")
    prod_task = local_aws.seeded["prod-web"][0].rsplit("/", 1)[-1]
    request = ApprovalRequest.objects.create(
        action="ecs.stop_task",
        target={"task_arn": "arn:aws:ecs:eu-west-1:1:task/prod-web/abc"},
        target_label="prod-web/abc",
        account=cast.prod,
        requester=cast.operator,
        reason="r",
        approvals_required=5,
        expires_at=run.created_at.replace(year=2100),
    )
    from ecsportal.runbooks.models import Runbook

    runbook = Runbook.objects.filter(accounts=cast.prod, options__isnull=True).first()
    batch = Batch.objects.create(
        requested_by=cast.operator,
        command="echo hi",
        command_sha256="0" * 64,
        targets_sha256="0" * 64,
        status=BatchStatus.FINISHED,
        ended_at=run.created_at,
    )
    BatchTarget.objects.create(
        batch=batch,
        position=0,
        account=cast.prod,
        region="eu-west-1",
        cluster="prod-web",
        task_arn=run.task_arn,
        container="app",
        run=run,
        state=TargetState.STARTED,
    )
    return SimpleNamespace(
        cast=cast,
        run=run,
        stopped=row(cast.prod),
        prod_task=prod_task,
        request=request,
        runbook=runbook,
        batch=batch,
        prod_tasks=local_aws.seeded["prod-web"],
    )


def operations(w: SimpleNamespace) -> list[tuple[str, str, dict | None]]:
    """Every operation of the API, with a valid request (so only the token decides)."""
    prod, run, req = w.cast.prod.pk, w.run.pk, w.request.pk
    target = {
        "account": str(prod),
        "region": "eu-west-1",
        "cluster": "prod-web",
        "task": w.prod_task,
        "container": "app",
    }
    return [
        ("GET", "/api/v1/me", None),
        ("GET", "/api/v1/accounts", None),
        ("GET", f"/api/v1/accounts/{prod}/clusters", None),
        ("GET", f"/api/v1/accounts/{prod}/clusters/prod-web/services?region=eu-west-1", None),
        ("GET", f"/api/v1/accounts/{prod}/clusters/prod-web/tasks?region=eu-west-1", None),
        ("GET", "/api/v1/stopped", None),
        ("GET", f"/api/v1/stopped/{w.stopped.pk}", None),
        ("POST", "/api/v1/runs", {**target, "command": "true", "reason": "test"}),
        ("GET", "/api/v1/runs", None),
        ("GET", f"/api/v1/runs/{run}", None),
        ("GET", f"/api/v1/runs/{run}/output", None),
        ("POST", f"/api/v1/runs/{run}/cancel", None),
        ("GET", "/api/v1/runbooks", None),
        ("POST", f"/api/v1/runbooks/{w.runbook.pk}/runs", target),
        ("POST", "/api/v1/stops", {**target, "reason": "test"}),
        ("GET", f"/api/v1/stops/{req}", None),
        ("GET", "/api/v1/approvals/inbox", None),
        ("GET", "/api/v1/approvals/mine", None),
        ("GET", f"/api/v1/approvals/{req}", None),
        ("POST", f"/api/v1/approvals/{req}/decision", {"decision": "approve"}),
        ("POST", "/api/v1/batches/preview", {"accounts": [str(prod)], "cluster": "prod-web"}),
        (
            "POST",
            "/api/v1/batches",
            {"accounts": [str(prod)], "cluster": "prod-web", "container": "app", "command": "true", "reason": "t"},
        ),
        ("GET", "/api/v1/batches", None),
        ("GET", f"/api/v1/batches/{w.batch.pk}", None),
        ("POST", f"/api/v1/batches/{w.batch.pk}/cancel", None),
    ]


def call(method: str, path: str, body: dict | None, secret: str | None):
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    client = Client()
    if method == "GET":
        return client.get(path, headers=headers)
    return client.post(path, body or {}, content_type="application/json", headers=headers)


def test_the_operations_listed_here_are_all_of_the_schemas(world):
    token = make_token(world.cast.admin)
    schema = call("GET", "/api/v1/openapi.json", None, token).json()
    listed = {(m, p.split("?")[0].replace("/api/v1", "")) for m, p, _ in operations(world)}
    in_schema = {(m.upper(), p.replace("/api/v1", "")) for p, item in schema["paths"].items() for m in item}
    normalised = set()
    for method, path in listed:
        parts = path.split("/")
        for i, part in enumerate(parts):
            if part.isdigit() or part in (world.prod_task, "prod-web"):
                parts[i] = "{}"
        normalised.add((method, "/".join(parts)))
    import re

    assert {(m, re.sub(r"\{[^}]+\}", "{}", p)) for m, p in in_schema} == normalised


@pytest.mark.parametrize("kind", ["none", "expired", "revoked", "unknown", "malformed"])
def test_every_operation_refuses_a_missing_or_dead_token_with_a_401_problem(world, kind):
    secret = make_token(world.cast.admin)
    if kind == "expired":
        expire(secret)
    elif kind == "revoked":
        token_revoke(actor=world.cast.admin, token=ApiToken.objects.get(prefix=secret.split("_")[1]))
    presented = {"none": None, "unknown": secret[:-2] + "xx", "malformed": "hunter2"}.get(kind, secret)
    before = (Run.objects.count(), ApprovalRequest.objects.count())
    for method, path, body in operations(world):
        answer = call(method, path, body, presented)
        assert answer.status_code == 401, (kind, method, path, answer.content)
        assert answer["Content-Type"] == "application/problem+json"
        assert answer["WWW-Authenticate"].startswith("Bearer")
        detail = answer.json()["detail"]
        expected = {
            "expired": "expired",
            "revoked": "revoked",
            "unknown": "not known",
            "malformed": "Bearer ecsp_",
            "none": "Authorization: Bearer",
        }[kind]
        assert expected in detail, (kind, detail)
    assert (Run.objects.count(), ApprovalRequest.objects.count()) == before


def test_a_token_limited_to_one_account_cannot_see_or_touch_another(world):
    """The operator's token reaches only Staging: Production's objects are "not found"."""
    secret = make_token(world.cast.operator, accounts=[world.cast.staging])
    before = (Run.objects.count(), ApprovalRequest.objects.count())
    for method, path, body in operations(world):
        answer = call(method, path, body, secret)
        if (
            path.startswith(
                (
                    "/api/v1/accounts/",
                    "/api/v1/stopped/",
                    "/api/v1/runs/",
                    "/api/v1/stops/",
                    "/api/v1/batches/",
                    f"/api/v1/approvals/{world.request.pk}",
                )
            )
            or method == "POST"
        ):
            assert answer.status_code == 404, (method, path, answer.content)
            continue
        assert answer.status_code == 200, (method, path, answer.content)
        text = answer.content.decode()
        assert "Acme Production" not in text, path
    assert (Run.objects.count(), ApprovalRequest.objects.count()) == before


def test_a_token_capped_at_viewer_cannot_act_though_its_owner_can(world):
    secret = make_token(world.cast.operator, role=Role.VIEWER)
    for method, path, body in operations(world):
        if method != "POST":
            continue
        answer = call(method, path, body, secret)
        assert answer.status_code == 403, (path, answer.content)
        assert "role" in answer.json()["detail"]  # which role it needs
    assert call("GET", f"/api/v1/runs/{world.run.pk}", None, secret).status_code == 200


def test_a_run_started_through_the_api_is_audited_with_the_token_and_waits_for_approval(world):
    """Production asks for approval of commands: the API gets no way round it."""
    secret = make_token(world.cast.operator)
    body = {
        "account": "Acme Production",
        "cluster": "prod-web",
        "service": "web",
        "container": "app",
        "command": "id",
        "reason": "check",
    }
    answer = call("POST", "/api/v1/runs", body, secret)
    assert answer.status_code == 201, answer.content
    run = answer.json()
    assert run["status"] == "awaiting_approval" and run["approval_url"].endswith(f"/approvals/{run['approval_id']}/")
    event = AuditEvent.objects.get(action="run.requested", details__run=run["id"])
    assert event.details["api_token"] == ApiToken.objects.get(prefix=secret.split("_")[1]).label
    assert event.actor_username == "operator"


def test_a_run_without_a_reason_where_approval_is_needed_is_a_422_saying_so(world):
    secret = make_token(world.cast.operator)
    body = {"account": "Acme Production", "cluster": "prod-web", "service": "web", "container": "app", "command": "id"}
    answer = call("POST", "/api/v1/runs", body, secret)
    assert answer.status_code == 422 and "say why" in answer.json()["detail"]
    assert not Run.objects.filter(command="id").exists()


def test_a_malformed_body_is_a_422_problem_naming_the_field(world):
    answer = call(
        "POST", "/api/v1/runs", {"account": "1", "cluster": "a b", "command": ""}, make_token(world.cast.admin)
    )
    assert answer.status_code == 422 and answer["Content-Type"] == "application/problem+json"
    fields = {e["field"] for e in answer.json()["errors"]}
    assert {"cluster", "command"} <= fields


def test_output_is_read_from_a_sequence_number_and_ends_complete(world):
    secret = make_token(world.cast.viewer)
    page = call("GET", f"/api/v1/runs/{world.run.pk}/output?after=0&wait=5", None, secret).json()
    assert [c["text"] for c in page["chunks"]] == ["hello\n"] and page["complete"] and page["next_after"] == 1
    assert page["run"]["exit_code"] == 3
    page = call("GET", f"/api/v1/runs/{world.run.pk}/output?after=1&wait=5", None, secret).json()
    assert page["chunks"] == [] and page["complete"]


def test_cancelling_an_ended_run_is_a_409_saying_so(world):
    answer = call("POST", f"/api/v1/runs/{world.run.pk}/cancel", None, make_token(world.cast.operator))
    assert answer.status_code == 409 and "already ended" in answer.json()["detail"]


def test_a_service_token_cannot_decide_on_approvals(world):
    cast = world.cast
    request = ApprovalRequest.objects.create(
        action="ecs.stop_task",
        target={},
        target_label="x",
        account=cast.prod,
        requester=cast.operator,
        reason="r",
        approvals_required=1,
        expires_at=world.run.created_at.replace(year=2100),
    )
    service = make_service_token(cast.admin, accounts=[cast.prod])
    answer = call("POST", f"/api/v1/approvals/{request.pk}/decision", {"decision": "approve"}, service)
    assert answer.status_code == 403 and "personal token" in answer.json()["detail"]
    assert not request.decisions.exists()


def test_a_token_past_its_rate_gets_429_with_retry_after_and_others_do_not(world, settings):
    settings.ECSPORTAL_API_REQUESTS_PER_MINUTE = 3
    busy, calm = make_token(world.cast.viewer, name="busy"), make_token(world.cast.viewer, name="calm")
    answers = [call("GET", "/api/v1/me", None, busy) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert 1 <= int(answers[-1]["Retry-After"]) <= 61
    assert answers[-1]["Content-Type"] == "application/problem+json"
    assert call("GET", "/api/v1/me", None, calm).status_code == 200


def test_a_token_is_never_logged(world, caplog):
    secret = make_token(world.cast.operator)
    caplog.set_level(logging.DEBUG)
    call("GET", "/api/v1/accounts", None, secret)
    call("GET", "/api/v1/accounts", None, secret[:-2] + "xx")
    call("POST", "/api/v1/runs", {"account": "nope", "cluster": "c", "command": "x"}, secret)
    assert secret.split("_", 2)[2] not in caplog.text
    assert secret[:-2] not in caplog.text


def test_last_use_is_recorded_with_the_address(world):
    secret = make_token(world.cast.viewer)
    Client(REMOTE_ADDR="10.1.2.3").get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    token = ApiToken.objects.get(prefix=secret.split("_")[1])
    assert token.last_used_at is not None and token.last_used_ip == "10.1.2.3"


def test_an_approver_decides_with_a_personal_token_and_the_audit_names_it(world):
    secret = make_token(world.cast.approver)
    answer = call(
        "POST", f"/api/v1/approvals/{world.request.pk}/decision", {"decision": "approve", "comment": "ok"}, secret
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["approvals"] == 1 and answer.json()["status"] == "pending"  # 5 needed: nothing ran
    event = AuditEvent.objects.get(action="approval.approve")
    assert event.actor_username == "approver"
    assert event.details["api_token"] == ApiToken.objects.get(prefix=secret.split("_")[1]).label
    again = call("POST", f"/api/v1/approvals/{world.request.pk}/decision", {"decision": "approve"}, secret)
    assert again.status_code == 409 and "already decided" in again.json()["detail"]


def test_the_requester_cannot_approve_their_own_request_through_the_api(world):
    ApprovalRequest.objects.filter(pk=world.request.pk).update(requester=world.cast.approver)
    answer = call(
        "POST",
        f"/api/v1/approvals/{world.request.pk}/decision",
        {"decision": "approve"},
        make_token(world.cast.approver),
    )
    assert answer.status_code == 403 and "your own request" in answer.json()["detail"]
    assert not world.request.decisions.exists()


def test_a_superusers_token_capped_at_viewer_cannot_cancel_a_batch(world):
    """The batch gate reads roles through the token's scope, superusers included."""
    secret = make_token(world.cast.admin, role=Role.VIEWER)
    answer = call("POST", f"/api/v1/batches/{world.batch.pk}/cancel", None, secret)
    assert answer.status_code == 403 and "operator role" in answer.json()["detail"]


def test_a_batch_preview_through_the_api_lists_targets_and_its_hash_binds_the_start(world):
    secret = make_token(world.cast.operator)
    body = {"accounts": ["Acme Production"], "cluster": "prod-web", "service": "web", "container": "app"}
    preview = call("POST", "/api/v1/batches/preview", body, secret).json()
    assert preview["targets"] and preview["problem"] is None
    assert {t["task"] for t in preview["targets"]} <= {a.rsplit("/", 1)[-1] for a in world.prod_tasks}
    stale = {**body, "command": "id", "reason": "r", "expect_targets_sha256": "f" * 64}
    answer = call("POST", "/api/v1/batches", stale, secret)
    assert answer.status_code == 422 and "changed since the preview" in answer.json()["detail"]
    fresh = {**stale, "expect_targets_sha256": preview["targets_sha256"]}
    answer = call("POST", "/api/v1/batches", fresh, secret)
    assert answer.status_code == 201, answer.content
    batch = answer.json()
    # Production asks for approval: the batch waits on one request, and the API says where.
    assert batch["status"] == "awaiting_approval" and batch["approval_url"].endswith(
        f"/approvals/{batch['approval_id']}/"
    )
    assert batch["targets_sha256"] == preview["targets_sha256"]
    assert len([t for t in batch["targets"] if t["in_target_list"]]) == len(preview["targets"])
    event = AuditEvent.objects.get(action="batch.requested", details__batch=batch["id"])
    assert event.details["api_token"] == ApiToken.objects.get(prefix=secret.split("_")[1]).label


def test_a_batch_needs_a_command_or_a_runbook_not_both(world):
    secret = make_token(world.cast.operator)
    body = {"accounts": ["Acme Staging"], "cluster": "staging", "command": "id", "runbook": str(world.runbook.pk)}
    answer = call("POST", "/api/v1/batches", body, secret)
    assert answer.status_code == 422 and "either a command or a runbook" in answer.json()["detail"]
    assert not Batch.objects.filter(command="id").exists()
