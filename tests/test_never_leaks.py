"""Known secrets, carried through the main flows, must show up nowhere a person or a log can read.

Two secrets: an account's secret access key (entered through the account form; the run below
reaches AWS with it) and a runbook's secret option value (used in an approved run, whose
command prints only the value's SHA-256). Plus the SSM session tokens ExecuteCommand hands
out. The test looks for them in every response body of the flows (pages, htmx fragments,
downloads, CSV/JSON exports), every log record (every logger the portal's logging lets through
at DEBUG), every audit row, every transcript chunk and stored command, and every message sent
through the channel layer.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings as django_settings
from django.test import Client

from ecsportal.accounts.models import AwsAccount, Membership, Role
from ecsportal.approvals.models import ApprovalRequest
from ecsportal.audit.models import AuditEvent
from ecsportal.aws import local
from ecsportal.demo import localaws
from ecsportal.runbooks.models import Runbook
from ecsportal.runs.models import Run, RunChunk, RunStatus
from tests.runbooks.test_views import task_id
from tests.runs.lab import wait_ended

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

ACCOUNT_SECRET = "nEvErLeAk/AccountSecretKey+0123456789abcdefXY"
RUNBOOK_SECRET = "nEvErLeAk-runbook-value-4242"
KEY_ID = "AKIANEVERLEAK0000001"
ACCOUNT_FORM = {
    "name": "Leak Keys",
    "account_id": localaws.ACCOUNT_A,  # moto maps any access key to its default account
    "regions": "eu-west-1",
    "credential_source": "keys",
    "access_key_id": KEY_ID,
    "session_name": "ecsportal",
    "session_duration": "3600",
    "approvals_for_stop": "1",
    "approvals_for_runbooks": "1",
    "approval_ttl_minutes": "60",
}
# Loggers the portal's settings hold above DEBUG because their DEBUG output carries request
# bodies and the SSM token frame. The test checks they are pinned, then turns them to DEBUG
# anyway: the redaction filter (ecsportal/logredact.py) must still keep every secret out.
PINNED = {"botocore", "boto3", "ecsportal.ssm.websockets"}


@pytest.fixture
def runner(settings, local_aws, data_channel):
    settings.ECSPORTAL_RUNNER_MODE = "inprocess"
    settings.ECSPORTAL_RUN_HEARTBEAT_SECONDS = 0.2
    settings.ECSPORTAL_RUN_TASK_CHECK_SECONDS = 0.5


@pytest.fixture
def everything_logged(caplog):
    """Every record every logger emits at DEBUG, the ones the settings pin higher included."""
    for name, config in django_settings.LOGGING["loggers"].items():
        if name in PINNED:
            assert logging.getLevelName(config["level"]) >= logging.WARNING, name
    caplog.set_level(logging.DEBUG)  # first: caplog then restores the root level it saw
    saved = {}
    for name in logging.root.manager.loggerDict:
        logger = logging.getLogger(name)
        if isinstance(logger, logging.PlaceHolder):
            continue
        saved[name] = logger.level
        logger.setLevel(logging.DEBUG)
    yield caplog
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def channel_messages(monkeypatch):
    """Every message sent to a channel or a group through the configured channel layer
    (in memory, or Redis under CI)."""
    seen: list[dict] = []
    layer_class = type(get_channel_layer())
    send, group_send = layer_class.send, layer_class.group_send

    async def recording_send(self, channel, message):
        seen.append(message)
        return await send(self, channel, message)

    async def recording_group_send(self, group, message):
        seen.append(message)
        return await group_send(self, group, message)

    monkeypatch.setattr(layer_class, "send", recording_send)
    monkeypatch.setattr(layer_class, "group_send", recording_group_send)
    return seen


@pytest.fixture
def ssm_tokens(data_channel):
    """The token of every ExecuteCommand session the local seam hands out."""
    tokens: list[str] = []
    registrar = local._registrar

    def recording(request: local.LocalExecRequest) -> str:
        tokens.append(request.token)
        return registrar(request)

    local.set_session_registrar(recording)
    yield tokens
    local.set_session_registrar(registrar)


class Browser:
    """One user's Django test client; keeps every body (and headers) it was answered with."""

    def __init__(self, user, bodies: list[tuple[str, bytes]]) -> None:
        self.client = Client()
        self.client.force_login(user)
        self.bodies = bodies

    def _keep(self, path: str, answer) -> object:
        body = b"".join(answer.streaming_content) if answer.streaming else answer.content
        self.bodies.append((path, body + str(answer.headers).encode()))
        assert answer.status_code < 500, (path, answer.status_code)
        return answer

    def get(self, path: str, htmx: bool = False, **query: str) -> object:
        headers = {"HX-Request": "true"} if htmx else {}
        return self._keep(path, self.client.get(path, query, headers=headers))

    def post(self, path: str, data: dict, htmx: bool = False) -> object:
        headers = {"HX-Request": "true"} if htmx else {}
        return self._keep(path, self.client.post(path, data, headers=headers))


def _set_up_account_through_the_form(cast, bodies) -> SimpleNamespace:
    admin = Browser(cast.admin, bodies)
    admin.get("/accounts/new/")
    # An invalid submission first: the secret must not be echoed back into the form.
    answer = admin.post("/accounts/new/", {**ACCOUNT_FORM, "account_id": "12", "secret_access_key": ACCOUNT_SECRET})
    assert answer.status_code in {200, 422}
    assert admin.post("/accounts/new/", {**ACCOUNT_FORM, "secret_access_key": ACCOUNT_SECRET}).status_code == 302
    account = AwsAccount.objects.get(name="Leak Keys")
    assert admin.post(f"/accounts/{account.pk}/test/", {}, htmx=True).status_code == 200
    for user, role in ((cast.operator, Role.OPERATOR), (cast.approver, Role.APPROVER), (cast.viewer, Role.VIEWER)):
        Membership.objects.create(user=user, account=account, role=role)
    book = Runbook.objects.get(name="Fingerprint a token")
    book.accounts.add(account)
    Runbook.objects.filter(pk=book.pk).update(needs_approval=True)
    return SimpleNamespace(admin=admin, account=account, book=book)


def _request_the_runbook_run(cast, setup, bodies) -> Run:
    operator = Browser(cast.operator, bodies)
    book, account = setup.book, setup.account
    target = {
        "account": str(account.pk),
        "region": "eu-west-1",
        "cluster": "prod-web",
        "task": task_id(cast, "prod-web", "web"),
        "container": "app",
    }
    operator.get("/runbooks/")
    operator.get(f"/runbooks/{book.pk}/")
    operator.get(f"/runbooks/{book.pk}/pick/", **target)
    # Refused first (no reason given, and the runbook needs an approval): the 422 form must not
    # carry the value back.
    refused = operator.post(f"/runbooks/{book.pk}/", {**target, "opt_token": RUNBOOK_SECRET})
    assert refused.status_code == 422
    answer = operator.post(f"/runbooks/{book.pk}/", {**target, "opt_token": RUNBOOK_SECRET, "reason": "rotate check"})
    assert answer.status_code == 302, answer.content[:2000]
    run = Run.objects.get(pk=int(answer["Location"].strip("/").rsplit("/", 1)[-1]))
    assert run.status == RunStatus.AWAITING_APPROVAL and run.account_id == account.pk
    operator.get(f"/runs/{run.pk}/")
    operator.get("/approvals/", mine="on")
    operator.get(f"/approvals/{run.approval_id}/")
    return run


def _approve(cast, run: Run, bodies) -> None:
    approver = Browser(cast.approver, bodies)
    approver.get("/approvals/inbox/")
    approver.get("/approvals/nav/", htmx=True)
    approver.get(f"/approvals/{run.approval_id}/")
    approver.post(f"/approvals/{run.approval_id}/decide/", {"decision": "approve", "comment": "ok"}, htmx=True)


def _visit_everything_afterwards(cast, setup, run: Run, bodies) -> None:
    operator = Browser(cast.operator, bodies)
    for path in ("/", "/home/failures/", "/home/approvals/", "/home/runs/", "/home/clusters/"):
        operator.get(path)
    operator.get("/runs/")
    operator.get("/runs/", htmx=True, status="succeeded")
    operator.get(f"/runs/{run.pk}/")
    operator.get(f"/runs/{run.pk}/", htmx=True)
    operator.get(f"/runs/{run.pk}/transcript.txt")
    operator.get(f"/runs/{run.pk}/transcript.txt", escapes="1")
    operator.get(f"/runs/{run.pk}/transcript.cast")
    operator.get(f"/approvals/{run.approval_id}/")
    operator.get("/approvals/")
    operator.get("/stopped/")
    operator.get("/stopped/export.csv")
    operator.get("/stopped/export.json")
    operator.get("/inventory/")
    operator.get("/inventory/pick/", account=str(setup.account.pk), region="eu-west-1", cluster="prod-web")
    admin = setup.admin
    for path in (
        "/accounts/",
        f"/accounts/{setup.account.pk}/",
        f"/accounts/{setup.account.pk}/edit/",
        "/audit/",
        "/runbooks/manage/",
        f"/runbooks/manage/{setup.book.pk}/",
        "/admin/accounts/awsaccount/",
        f"/admin/accounts/awsaccount/{setup.account.pk}/change/",
        "/admin/audit/auditevent/",
    ):
        admin.get(path)
    admin.get("/audit/", q="Fingerprint")
    admin.get("/audit/", htmx=True, account=str(setup.account.pk))
    admin.get("/audit/export.csv")
    admin.get("/audit/export.csv", account=str(setup.account.pk))


def _stored_text() -> list[tuple[str, bytes]]:
    """Everything the database holds that people or exports read: commands, audit, approvals, chunks."""
    rows: list[tuple[str, bytes]] = []
    for run in Run.objects.all():
        for name in ("command", "command_sealed", "reason", "end_reason"):
            rows.append((f"Run.{name}", getattr(run, name).encode()))
    for event in AuditEvent.objects.all():
        rows.append((f"AuditEvent {event.action}", f"{event.target} {event.details}".encode()))
    for request in ApprovalRequest.objects.all():
        rows.append(("ApprovalRequest", f"{request.target} {request.target_label} {request.reason}".encode()))
    for chunk in RunChunk.objects.all():
        rows.append((f"RunChunk {chunk.run_id}/{chunk.seq}", bytes(chunk.data)))
    for account in AwsAccount.objects.all():
        rows.append((f"AwsAccount {account.name}", repr(account.__dict__).encode()))
    return rows


async def test_known_secrets_and_ssm_tokens_appear_nowhere(
    cast, runner, everything_logged, channel_messages, ssm_tokens
):
    from ecsportal.runs import dispatcher

    dispatcher.bind_loop(asyncio.get_running_loop())
    bodies: list[tuple[str, bytes]] = []
    # Every database call is thread-sensitive (one thread, in turn with the runner's).
    setup = await sync_to_async(_set_up_account_through_the_form)(cast, bodies)
    run = await sync_to_async(_request_the_runbook_run)(cast, setup, bodies)
    await sync_to_async(_approve)(cast, run, bodies)
    run = await wait_ended(run.pk)
    assert (run.status, run.exit_code) == (RunStatus.SUCCEEDED, 0), run.end_reason
    await sync_to_async(_visit_everything_afterwards)(cast, setup, run, bodies)

    transcript = b"".join(body for path, body in bodies if path.endswith("transcript.txt"))
    assert hashlib.sha256(RUNBOOK_SECRET.encode()).hexdigest().encode() in transcript  # the real value was used
    assert ssm_tokens, "no ExecuteCommand session was opened: the flow did not reach the data channel"
    records = [f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in everything_logged.records]
    names = {r.name for r in everything_logged.records}
    assert {"ecsportal.ssm.websockets", "botocore.endpoint"} <= names, f"DEBUG was not captured: {names}"
    stored = await sync_to_async(_stored_text)()
    messages = [repr(m).encode() for m in channel_messages]
    # Statuses always go through the layer (output doorbells only with Redis: in memory the
    # runner rings its loop's viewers directly, runs/streams.py `Doorbells`).
    assert any(m.get("type") == "run.status" for m in channel_messages), "no run message was observed"

    for secret in (ACCOUNT_SECRET, RUNBOOK_SECRET, *ssm_tokens):
        needle = secret.encode()
        assert [p for p, body in bodies if needle in body] == [], "a response body carried a secret"
        assert [r[:300] for r in records if secret in r] == [], "a log record carried a secret"
        assert [where for where, text in stored if needle in text] == [], "a stored row carried a secret"
        assert [m for m in messages if needle in m] == [], "a channel-layer message carried a secret"
        for message in channel_messages:  # doorbells carry a seq; the output itself is in the stream and rows
            if message.get("type") == "run.output":
                assert needle not in bytes(message.get("data", b""))
    assert len(bodies) > 40
