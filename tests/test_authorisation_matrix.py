"""The authorisation matrix: every URL and every WebSocket route, for every kind of user.

The URL patterns and socket routes are read from the resolvers, so a new URL or route without
an entry here fails `test_every_url_and_route_has_an_entry`. Each entry says what each role
gets for a read (GET) and a write (POST), as one of:

    login  sent to the login page (302 to /login/ or the admin's login)
    401    the session probe's "not logged in"
    403    refused: a member whose role is too low (the message says which role is needed)
    404    not found: not a member, so the object's existence does not leak
    405    the method is not served (only once logged in: anonymous users are sent to log in first)
    ok     through the gate: 200, a redirect elsewhere, or the view's own refusal of the input
           or the state (400, 409, 422), which only a permitted user can reach

The roles, on the account "Acme Production" the objects belong to: anonymous; outsider (admin of
another account only); viewer, operator, approver (the cast); account_admin (admin of this
account, not a superuser); superuser. POSTs carry no data (or harmless data), so a permitted
user meets a form error or a no-op, never a destructive change to the next role's fixture.
CSRF is switched off here (Django's test client default) and checked on its own below.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from ecsportal.accounts.models import Membership, Role
from ecsportal.apitokens.models import ApiToken
from ecsportal.routing import websocket_urlpatterns
from tests.api.conftest import make_token
from tests.cookies import session_cookie
from tests.runs.lab import stored_run

ROLES = ["anonymous", "outsider", "viewer", "operator", "approver", "account_admin", "superuser"]
LOGGED_IN = ROLES[1:]


def everyone(answer: str = "ok") -> dict[str, str]:
    return dict.fromkeys(ROLES, answer)


def users(answer: str = "ok") -> dict[str, str]:
    """Any logged-in user; anonymous is sent to log in."""
    return {"anonymous": "login", **dict.fromkeys(LOGGED_IN, answer)}


def members(min_role: str, *, outsider: str = "404") -> dict[str, str]:
    """Members of the object's account from `min_role` up; lower roles 403, non-members 404."""
    ladder = ["viewer", "operator", "approver", "account_admin", "superuser"]
    table = {"anonymous": "login", "outsider": outsider}
    for role in ladder:
        table[role] = "ok" if ladder.index(role) >= ladder.index(min_role) else "403"
    return table


def only(allowed: set[str], *, others: str = "403") -> dict[str, str]:
    return {"anonymous": "login", **{r: "ok" if r in allowed else others for r in LOGGED_IN}}


NOT_SERVED = users("405")  # the method is refused once logged in


def api_users(answer: str = "ok") -> dict[str, str]:
    """Any token; no token: 401 (the API never sends anyone to a login page)."""
    return {"anonymous": "401", **dict.fromkeys(LOGGED_IN, answer)}


def api_members(min_role: str) -> dict[str, str]:
    return {**members(min_role), "anonymous": "401"}


API_NOT_SERVED = everyone("405")  # the method is refused before any token is read: nothing leaks
API_USERS_404 = everyone("404")  # no operation at the root, whoever asks


@dataclass
class Entry:
    path: Callable[[SimpleNamespace], str]
    get: dict[str, str]
    post: dict[str, str] = field(default_factory=lambda: NOT_SERVED)
    data: dict[str, str] = field(default_factory=dict)
    renew: Callable[[SimpleNamespace], None] | None = None
    # An API route: each role calls it with a personal token of its own (all its accounts, its own
    # role), anonymous with none; `body` is the POST's JSON (a valid one, so the gate decides).
    api: bool = False
    body: Callable[[SimpleNamespace], dict] | None = None


def fixed(path: str) -> Callable[[SimpleNamespace], str]:
    return lambda w: path


MATRIX: dict[str, Entry] = {
    # --- the shell
    "home": Entry(fixed("/"), users()),
    "home_panel": Entry(fixed("/home/approvals/"), users()),
    "healthz": Entry(fixed("/healthz"), everyone(), post=everyone("405")),
    "session_probe": Entry(fixed("/session"), {**users(), "anonymous": "401"}, post=everyone("405")),
    # Prometheus' scrape: its own bearer token, no session (tests/test_metrics.py); unset here, so 404.
    "metrics": Entry(fixed("/metrics"), everyone("404"), post=everyone("405")),
    "login": Entry(fixed("/login/"), everyone(), post=everyone()),
    "admin_login": Entry(fixed("/admin/login/"), everyone(), post=everyone()),
    # Logging out ends on the login page, whoever asked.
    "logout": Entry(fixed("/logout/"), users(), post=everyone("login")),
    "admin_logout": Entry(fixed("/admin/logout/"), users(), post=everyone("login")),
    # --- accounts: members read, account admins change, portal admins create
    "accounts:list": Entry(fixed("/accounts/"), users()),
    "accounts:create": Entry(fixed("/accounts/new/"), only({"superuser"}), post=only({"superuser"})),
    "accounts:detail": Entry(lambda w: f"/accounts/{w.prod.pk}/", members("viewer"), post=users("405")),
    "accounts:edit": Entry(
        lambda w: f"/accounts/{w.prod.pk}/edit/", members("account_admin"), post=members("account_admin")
    ),
    "accounts:toggle": Entry(
        lambda w: f"/accounts/{w.prod.pk}/enabled/", NOT_SERVED, post=members("account_admin"), data={"enabled": "1"}
    ),
    "accounts:test": Entry(lambda w: f"/accounts/{w.prod.pk}/test/", NOT_SERVED, post=members("account_admin")),
    "accounts:member_add": Entry(
        lambda w: f"/accounts/{w.prod.pk}/members/", NOT_SERVED, post=members("account_admin")
    ),
    "accounts:member_change": Entry(
        lambda w: f"/accounts/{w.prod.pk}/members/{w.membership.pk}/",
        NOT_SERVED,
        post=members("account_admin"),
        data={"role": str(Role.VIEWER)},
    ),
    "accounts:member_remove": Entry(
        lambda w: f"/accounts/{w.prod.pk}/members/{w.membership.pk}/remove/",
        NOT_SERVED,
        post=members("account_admin"),
        data={},
    ),
    # --- inventory: members read (live from the local AWS)
    "inventory:overview": Entry(fixed("/inventory/"), users()),
    "inventory:picker": Entry(fixed("/inventory/pick/"), users()),
    "inventory:refresh": Entry(lambda w: f"/inventory/{w.prod.pk}/refresh/", NOT_SERVED, post=members("viewer")),
    "inventory:cluster": Entry(lambda w: f"/inventory/{w.prod.pk}/eu-west-1/prod-web/", members("viewer")),
    "inventory:task": Entry(
        lambda w: f"/inventory/{w.prod.pk}/eu-west-1/prod-web/tasks/{w.task_id}/", members("viewer")
    ),
    # --- stopped-task history: every list is limited to the user's accounts
    "stopped:list": Entry(fixed("/stopped/"), users()),
    "stopped:detail": Entry(lambda w: f"/stopped/{w.stopped.pk}/", members("viewer")),
    "stopped:status": Entry(fixed("/stopped/status/"), users()),
    "stopped:refresh": Entry(fixed("/stopped/refresh/"), NOT_SERVED, post=users()),
    "stopped:export_csv": Entry(fixed("/stopped/export.csv"), users()),
    "stopped:export_json": Entry(fixed("/stopped/export.json"), users()),
    # --- audit: account admins (their accounts), superusers (all)
    "audit:list": Entry(fixed("/audit/"), only({"outsider", "account_admin", "superuser"})),
    "audit:export_csv": Entry(fixed("/audit/export.csv"), only({"outsider", "account_admin", "superuser"})),
    # --- approvals (the request is the operator's stop request on Acme Production)
    "approvals:list": Entry(fixed("/approvals/"), users()),
    "approvals:inbox": Entry(fixed("/approvals/inbox/"), users()),
    "approvals:nav": Entry(fixed("/approvals/nav/"), users()),
    "approvals:detail": Entry(lambda w: f"/approvals/{w.request.pk}/", members("viewer")),
    "approvals:decide": Entry(
        lambda w: f"/approvals/{w.request.pk}/decide/",
        NOT_SERVED,
        post=members("approver"),  # the requester (operator) could not either; 5 approvals needed: nothing runs
        data={"decision": "approve"},
    ),
    "approvals:cancel": Entry(
        lambda w: f"/approvals/{w.request.pk}/cancel/",
        NOT_SERVED,
        post={**members("viewer"), "viewer": "403", "approver": "403", "account_admin": "403", "superuser": "403"},
    ),
    "approvals:acknowledge": Entry(
        lambda w: f"/approvals/{w.request.pk}/acknowledge/", NOT_SERVED, post=members("approver")
    ),
    # --- stops: operators (of any account) ask
    "stops:new": Entry(
        fixed("/stops/new/"),
        only({"outsider", "operator", "approver", "account_admin", "superuser"}),
        post=only({"outsider", "operator", "approver", "account_admin", "superuser"}),
    ),
    "stops:picker": Entry(fixed("/stops/pick/"), users()),
    # --- shells: operators (of any account) ask for shell access; the task itself goes through the gate
    "shells:request": Entry(
        fixed("/shells/access/new/"),
        only({"outsider", "operator", "approver", "account_admin", "superuser"}),
        post=only({"outsider", "operator", "approver", "account_admin", "superuser"}),
    ),
    # --- runs
    "runs:list": Entry(fixed("/runs/"), users()),
    "runs:new": Entry(
        fixed("/runs/new/"),
        only({"outsider", "operator", "approver", "account_admin", "superuser"}),
        post=only({"outsider", "operator", "approver", "account_admin", "superuser"}),
    ),
    "runs:picker": Entry(fixed("/runs/pick/"), users()),
    # a shell: an empty POST is refused by its form (nothing opens); viewers-only users get 403 first
    "runs:shell": Entry(
        fixed("/runs/shell/"),
        NOT_SERVED,
        post=only({"outsider", "operator", "approver", "account_admin", "superuser"}),
    ),
    "runs:shell_end": Entry(lambda w: f"/runs/{w.run.pk}/end/", NOT_SERVED, post=members("operator")),
    "runs:detail": Entry(lambda w: f"/runs/{w.run.pk}/", members("viewer")),
    "runs:cancel": Entry(lambda w: f"/runs/{w.run.pk}/cancel/", NOT_SERVED, post=members("operator")),
    "runs:transcript": Entry(lambda w: f"/runs/{w.run.pk}/transcript.txt", members("operator")),
    "runs:cast": Entry(lambda w: f"/runs/{w.run.pk}/transcript.cast", members("operator")),
    # --- runbooks (one, on Acme Production only)
    "runbooks:list": Entry(fixed("/runbooks/"), users()),
    "runbooks:run": Entry(lambda w: f"/runbooks/{w.runbook.pk}/", members("viewer"), post=members("operator")),
    "runbooks:picker": Entry(lambda w: f"/runbooks/{w.runbook.pk}/pick/", members("viewer")),
    "runbooks:manage": Entry(fixed("/runbooks/manage/"), only({"outsider", "account_admin", "superuser"})),
    "runbooks:manage_create": Entry(
        fixed("/runbooks/manage/new/"),
        only({"outsider", "account_admin", "superuser"}),
        post=only({"outsider", "account_admin", "superuser"}),
    ),
    "runbooks:manage_edit": Entry(
        lambda w: f"/runbooks/manage/{w.runbook.pk}/",
        members("account_admin"),
        post=members("account_admin"),
    ),
    "runbooks:manage_enabled": Entry(
        lambda w: f"/runbooks/manage/{w.runbook.pk}/enabled/",
        NOT_SERVED,
        post=members("account_admin"),
        data={"enabled": "1"},
    ),
    "runbooks:manage_delete": Entry(
        lambda w: f"/runbooks/manage/{w.runbook.pk}/delete/",
        members("account_admin"),
        post=members("account_admin"),
        renew=lambda w: w.renew_runbook(),  # a permitted POST deletes it: a fresh one for each role
    ),
    # --- batches (one finished batch, one target on Acme Production: a POST changes nothing)
    "batches:list": Entry(fixed("/batches/"), users()),
    "batches:new": Entry(
        fixed("/batches/new/"),
        only({"outsider", "operator", "approver", "account_admin", "superuser"}),
        post=only({"outsider", "operator", "approver", "account_admin", "superuser"}),
    ),
    "batches:detail": Entry(lambda w: f"/batches/{w.batch.pk}/", members("viewer")),
    "batches:cancel": Entry(lambda w: f"/batches/{w.batch.pk}/cancel/", NOT_SERVED, post=members("operator")),
    "batches:rerun": Entry(lambda w: f"/batches/{w.batch.pk}/rerun/", NOT_SERVED, post=members("operator")),
    "batches:transcript": Entry(lambda w: f"/batches/{w.batch.pk}/transcript.txt", members("operator")),
    "batches:summary": Entry(lambda w: f"/batches/{w.batch.pk}/summary.json", members("viewer")),
    # --- API tokens: everyone's own; service tokens for portal admins
    "apitokens:list": Entry(fixed("/tokens/"), users()),
    "apitokens:create": Entry(fixed("/tokens/new/"), NOT_SERVED, post=users()),
    "apitokens:service_create": Entry(fixed("/tokens/service/new/"), NOT_SERVED, post=only({"superuser"})),
    "apitokens:revoke": Entry(
        lambda w: f"/tokens/{w.token.pk}/revoke/",
        NOT_SERVED,
        post={**only({"viewer"}, others="404")},  # the viewer's own token; nobody else's (404: it does not leak)
        renew=lambda w: w.renew_token(),
    ),
    # --- the API (/api/v1/): tokens, never the session
    "api:docs": Entry(fixed("/api/v1/docs/"), users()),
    "api:openapi-json": Entry(fixed("/api/v1/openapi.json"), {**users(), "anonymous": "401"}, post=API_NOT_SERVED),
    "api:api-root": Entry(fixed("/api/v1/"), API_USERS_404, post=API_USERS_404, api=True),
    "api:me": Entry(fixed("/api/v1/me"), api_users(), post=API_NOT_SERVED, api=True),
    "api:accounts": Entry(fixed("/api/v1/accounts"), api_users(), post=API_NOT_SERVED, api=True),
    "api:clusters": Entry(
        lambda w: f"/api/v1/accounts/{w.prod.pk}/clusters", api_members("viewer"), post=API_NOT_SERVED, api=True
    ),
    "api:services": Entry(
        lambda w: f"/api/v1/accounts/{w.prod.pk}/clusters/prod-web/services?region=eu-west-1",
        api_members("viewer"),
        post=API_NOT_SERVED,
        api=True,
    ),
    "api:tasks": Entry(
        lambda w: f"/api/v1/accounts/{w.prod.pk}/clusters/prod-web/tasks?region=eu-west-1",
        api_members("viewer"),
        post=API_NOT_SERVED,
        api=True,
    ),
    "api:stopped": Entry(fixed("/api/v1/stopped"), api_users(), post=API_NOT_SERVED, api=True),
    "api:stopped_one": Entry(
        lambda w: f"/api/v1/stopped/{w.stopped.pk}", api_members("viewer"), post=API_NOT_SERVED, api=True
    ),
    # GET lists runs; POST starts one (on_commit never fires inside the test's transaction: nothing runs)
    "api:run_list": Entry(
        fixed("/api/v1/runs"),
        api_users(),
        post=api_members("operator"),
        api=True,
        body=lambda w: {
            "account": str(w.prod.pk),
            "region": "eu-west-1",
            "cluster": "prod-web",
            "task": w.task_id,
            "container": "app",
            "command": "true",
            "reason": "matrix",
        },
    ),
    "api:run_get": Entry(lambda w: f"/api/v1/runs/{w.run.pk}", api_members("viewer"), post=API_NOT_SERVED, api=True),
    "api:run_output": Entry(
        lambda w: f"/api/v1/runs/{w.run.pk}/output", api_members("viewer"), post=API_NOT_SERVED, api=True
    ),
    "api:run_cancel_view": Entry(
        lambda w: f"/api/v1/runs/{w.run.pk}/cancel", API_NOT_SERVED, post=api_members("operator"), api=True
    ),  # it ended: 409 for operators
    "api:runbook_list": Entry(fixed("/api/v1/runbooks"), api_users(), post=API_NOT_SERVED, api=True),
    "api:runbook_start": Entry(
        lambda w: f"/api/v1/runbooks/{w.runbook.pk}/runs",
        API_NOT_SERVED,
        post=api_members("operator"),
        api=True,
        body=lambda w: {
            "account": str(w.prod.pk),
            "region": "eu-west-1",
            "cluster": "prod-web",
            "task": w.task_id,
            "container": "app",
        },
    ),
    # batches: the preview and the start read the live inventory (local AWS); on Acme Production a
    # start waits for approval (on_commit never fires inside the test's transaction: nothing runs)
    "api:batch_preview_view": Entry(
        fixed("/api/v1/batches/preview"),
        API_NOT_SERVED,
        post=api_members("operator"),
        api=True,
        body=lambda w: {"accounts": [str(w.prod.pk)], "cluster": "prod-web", "container": "app"},
    ),
    "api:batch_list": Entry(
        fixed("/api/v1/batches"),
        api_users(),
        post=api_members("operator"),
        api=True,
        body=lambda w: {
            "accounts": [str(w.prod.pk)],
            "cluster": "prod-web",
            "container": "app",
            "command": "true",
            "reason": "matrix",
        },
    ),
    "api:batch_get": Entry(
        lambda w: f"/api/v1/batches/{w.batch.pk}", api_members("viewer"), post=API_NOT_SERVED, api=True
    ),
    "api:batch_cancel_view": Entry(
        lambda w: f"/api/v1/batches/{w.batch.pk}/cancel", API_NOT_SERVED, post=api_members("operator"), api=True
    ),  # it ended: 409 for operators
    "api:stop_create": Entry(
        fixed("/api/v1/stops"),
        API_NOT_SERVED,
        post=api_members("operator"),
        api=True,
        body=lambda w: {
            "account": str(w.prod.pk),
            "region": "eu-west-1",
            "cluster": "prod-web",
            "task": w.task_id,
            "reason": "matrix",
        },
    ),
    "api:stop_get": Entry(
        lambda w: f"/api/v1/stops/{w.request.pk}", api_members("viewer"), post=API_NOT_SERVED, api=True
    ),
    "api:inbox": Entry(fixed("/api/v1/approvals/inbox"), api_users(), post=API_NOT_SERVED, api=True),
    "api:mine": Entry(fixed("/api/v1/approvals/mine"), api_users(), post=API_NOT_SERVED, api=True),
    "api:approval_get": Entry(
        lambda w: f"/api/v1/approvals/{w.request.pk}", api_members("viewer"), post=API_NOT_SERVED, api=True
    ),
    "api:decide": Entry(
        lambda w: f"/api/v1/approvals/{w.request.pk}/decision",
        API_NOT_SERVED,
        post=api_members("approver"),
        api=True,
        body=lambda w: {"decision": "approve"},
    ),
}
MATRIX["api:run_start"] = MATRIX["api:run_list"]  # one path, two methods: ninja names the URL twice
MATRIX["api:batch_start_view"] = MATRIX["api:batch_list"]

# Django's admin: portal admins (superusers) only; everybody else is sent to its login page.
ADMIN_ENTRY = Entry(fixed(""), only({"superuser"}, others="login"), post=only({"superuser"}, others="login"))

ADMIN_REFUSED_EVEN_TO_SUPERUSERS = {
    # Read-only in the admin: changes go through the portal's audited services (the trail: never).
    "admin:accounts_awsaccount_add",
    "admin:accounts_membership_add",
    "admin:audit_auditevent_add",
    "admin:runbooks_runbook_add",
    "admin:autocomplete",  # refuses a request without its parameters
}

# WebSocket routes: connected, or the close code (4401 not logged in, 4403 refused).
WS_MATRIX: dict[str, tuple[Callable[[SimpleNamespace], str], dict[str, str]]] = {
    "ws/approvals/inbox/": (
        fixed("/ws/approvals/inbox/"),
        {"anonymous": "4401", "viewer": "4403", "operator": "4403"}  # approvers of some account connect
        | dict.fromkeys(["outsider", "approver", "account_admin", "superuser"], "connected"),
    ),
    "ws/approvals/<int:pk>/": (
        lambda w: f"/ws/approvals/{w.request.pk}/",
        {"anonymous": "4401", "outsider": "4403"} | dict.fromkeys(ROLES[2:], "connected"),
    ),
    "ws/runs/<int:pk>/": (
        lambda w: f"/ws/runs/{w.run.pk}/",
        {"anonymous": "4401", "outsider": "4403"} | dict.fromkeys(ROLES[2:], "connected"),
    ),
    # A shell's session socket: every member watches (typing is the server's decision, per frame)
    "ws/sessions/<int:pk>/": (
        lambda w: f"/ws/sessions/{w.shell.pk}/",
        {"anonymous": "4401", "outsider": "4403"} | dict.fromkeys(ROLES[2:], "connected"),
    ),
}


# --- enumeration --------------------------------------------------------------------------------


def url_names() -> tuple[list[str], list[str]]:
    """(portal URL names, admin URL names that take no arguments), from the root resolver."""
    portal, admin = [], []

    def walk(patterns: list, namespace: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, p.namespace or namespace)
            elif isinstance(p, URLPattern):
                name = f"{namespace}:{p.name}" if namespace else str(p.name)
                if namespace == "admin":
                    # login and logout are the portal's own views (admin_login, admin_logout)
                    if not p.pattern.regex.groups and p.name not in (None, "login", "logout"):
                        admin.append(name)
                else:
                    portal.append(name)

    walk(get_resolver().url_patterns, "")
    return portal, admin


PORTAL_NAMES, ADMIN_NAMES = url_names()


def test_every_url_and_route_has_an_entry():
    assert sorted(set(PORTAL_NAMES) - set(MATRIX)) == [], "add these URLs to the matrix"
    assert sorted(set(MATRIX) - set(PORTAL_NAMES)) == [], "these matrix entries name no URL"
    routes = [str(p.pattern) for p in websocket_urlpatterns]
    assert sorted(set(routes) - set(WS_MATRIX)) == [], "add these WebSocket routes to the matrix"
    assert sorted(set(WS_MATRIX) - set(routes)) == []
    assert "admin:index" in ADMIN_NAMES


# --- the world the matrix is checked in ---------------------------------------------------------


@pytest.fixture
def world(cast, local_aws):
    from django.utils import timezone

    from ecsportal.approvals.models import ApprovalRequest, Status
    from ecsportal.batches.models import Batch, BatchStatus, BatchTarget
    from ecsportal.runbooks.models import Runbook
    from ecsportal.runs.models import RunStatus
    from tests.stopped.helpers import row

    account_admin = get_user_model().objects.create_user("account_admin", password=cast.password)
    Membership.objects.create(user=account_admin, account=cast.prod, role=Role.ADMIN)
    member = get_user_model().objects.create_user("member", password=cast.password)
    membership = Membership.objects.create(user=member, account=cast.prod, role=Role.VIEWER)
    now = timezone.now()
    request = ApprovalRequest.objects.create(
        action="ecs.stop_task",
        target={"region": "eu-west-1", "cluster": "prod-web", "task_arn": "arn:aws:ecs:eu-west-1:1:task/prod-web/abc"},
        target_label="prod-web/abc",
        account=cast.prod,
        requester=cast.operator,
        reason="matrix",
        status=Status.PENDING,
        approvals_required=5,  # no single POST completes it, so nothing reaches AWS
        expires_at=now + timedelta(hours=1),
    )
    run = stored_run(account=cast.prod, requested_by=cast.operator, status=RunStatus.SUCCEEDED, ended_at=now)
    shell = stored_run(
        account=cast.prod,
        requested_by=cast.operator,
        status=RunStatus.COMPLETED,
        ended_at=now,
        interactive=True,
        keyboard_holder=cast.operator,
        command="/bin/sh",
    )
    batch = Batch.objects.create(
        requested_by=cast.operator,
        command="echo hi",
        command_sha256="0" * 64,
        targets_sha256="0" * 64,
        status=BatchStatus.FINISHED,
        ended_at=now,
    )
    BatchTarget.objects.create(
        batch=batch,
        position=0,
        account=cast.prod,
        region="eu-west-1",
        cluster="prod-web",
        task_arn=run.task_arn,
        container="app",
    )

    def renew_runbook() -> None:
        world.runbook = Runbook.objects.create(name=f"matrix {Runbook.objects.count()}", command_template="echo hi")
        world.runbook.accounts.add(cast.prod)

    users = {
        "outsider": cast.outsider,
        "viewer": cast.viewer,
        "operator": cast.operator,
        "approver": cast.approver,
        "account_admin": account_admin,
        "superuser": cast.admin,
    }
    world = SimpleNamespace(
        prod=cast.prod,
        users=users,
        membership=membership,
        request=request,
        run=run,
        shell=shell,
        batch=batch,
        stopped=row(cast.prod),
        task_id=local_aws.seeded["prod-web"][0].rsplit("/", 1)[-1],
        renew_runbook=renew_runbook,
    )
    renew_runbook()

    tokens: dict[str, str] = {}

    def token_of(role: str) -> str:
        if role not in tokens:
            tokens[role] = make_token(users[role], name=f"matrix {role}")
        return tokens[role]

    def renew_token() -> None:
        world.token = ApiToken.objects.get(prefix=make_token(cast.viewer, name="to revoke").split("_")[1])

    world.token_of = token_of
    world.renew_token = renew_token
    renew_token()
    return world


def classify(response) -> str:
    status = response.status_code
    if status in (301, 302, 303):
        location = response["Location"]
        return "login" if location.startswith(("/login/", "/admin/login/")) else "ok"
    if status in (401, 403, 404, 405):
        return str(status)
    assert status < 500, f"{status} from the server"
    return "ok"


def check(world: SimpleNamespace, entry: Entry, method: str, path: str) -> dict[str, str]:
    found = {}
    for role in ROLES:
        if entry.renew is not None:
            entry.renew(world)
            path = entry.path(world)
        client = Client()
        if entry.api:
            headers = {"Authorization": f"Bearer {world.token_of(role)}"} if role != "anonymous" else {}
            if method == "GET":
                found[role] = classify(client.get(path, headers=headers))
            else:
                body = entry.body(world) if entry.body else {}
                found[role] = classify(client.post(path, body, content_type="application/json", headers=headers))
            continue
        if role != "anonymous":
            client.force_login(world.users[role])
        if method == "GET":
            found[role] = classify(client.get(path))
        else:
            found[role] = classify(client.post(path, entry.data))
    return found


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(MATRIX))
def test_each_url_answers_each_role_as_the_matrix_says(world, name):
    entry = MATRIX[name]
    path = entry.path(world)
    assert check(world, entry, "GET", path) == entry.get, f"GET {path}"
    assert check(world, entry, "POST", path) == entry.post, f"POST {path}"


@pytest.mark.django_db
def test_the_django_admin_is_for_portal_admins_only(world):
    for name in ADMIN_NAMES:
        path = reverse(name)
        expected = dict(ADMIN_ENTRY.get)
        if name in ADMIN_REFUSED_EVEN_TO_SUPERUSERS:
            expected["superuser"] = "403"
        assert check(world, ADMIN_ENTRY, "GET", path) == expected, f"GET {path}"
    assert check(world, ADMIN_ENTRY, "POST", "/admin/auth/user/add/") == ADMIN_ENTRY.post


# --- CSRF ---------------------------------------------------------------------------------------


# Logging out sends everyone to the login page ("login", not "ok"), yet it is a POST that changes
# state: a page elsewhere must not be able to log the user out, so it needs the token too.
LOGOUTS = ("logout", "admin_logout")
POSTABLE = sorted(n for n, e in MATRIX.items() if not e.api and ("ok" in e.post.values() or n in LOGOUTS))
API_POSTABLE = sorted(n for n, e in MATRIX.items() if e.api and "ok" in e.post.values())


@pytest.mark.django_db
def test_the_api_ignores_the_session_so_a_cross_site_post_has_no_authority(world):
    """The API takes only a token (never ambient): a logged-in browser's POST, which another
    site could forge, is 401, so the API needs no CSRF token and nothing is recorded."""
    from ecsportal.audit.models import AuditEvent

    assert len(API_POSTABLE) >= 5
    before = AuditEvent.objects.count()
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["superuser"])
    for name in API_POSTABLE:
        entry = MATRIX[name]
        answer = client.post(
            entry.path(world), entry.body(world) if entry.body else {}, content_type="application/json"
        )
        assert answer.status_code == 401, name
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_every_post_without_the_csrf_token_is_refused(world, htmx):
    """Every URL that takes a POST from someone, posted by such a user without the token (a
    plain form, or htmx with its header), gets Django's CSRF refusal, and nothing is recorded;
    a logout without the token leaves the user logged in."""
    from ecsportal.audit.models import AuditEvent

    assert len(POSTABLE) > 20
    before = AuditEvent.objects.count()
    for name in POSTABLE:
        entry = MATRIX[name]
        role = "superuser" if name in LOGOUTS else next(r for r in reversed(ROLES) if entry.post[r] == "ok")
        client = Client(enforce_csrf_checks=True)
        if role != "anonymous":
            client.force_login(world.users[role])
        client.get("/logout/" if role != "anonymous" else "/login/")  # a page with a form: the CSRF cookie
        assert settings.CSRF_COOKIE_NAME in client.cookies  # as a browser holds it: only the token is missing
        headers = {"HX-Request": "true"} if htmx else {}
        answer = client.post(entry.path(world), entry.data, headers=headers)
        assert (answer.status_code, b"CSRF" in answer.content) == (403, True), name
        if name in LOGOUTS:
            session = client.session
            assert session.get("_auth_user_id") == str(world.users[role].pk), f"{name} ended the session"
            assert client.get("/").status_code == 200, f"{name} logged the user out without the token"
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_a_post_with_the_token_passes_the_csrf_check(world):
    """The refusal above is the missing token, not the test's own setup."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["superuser"])
    page = client.get("/logout/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert client.post("/logout/", {"csrfmiddlewaretoken": token}).status_code == 302
    assert client.get("/").status_code == 302  # logged out


# --- WebSockets ---------------------------------------------------------------------------------


async def _connect(path: str, cookie: bytes | None, origin: bytes = b"http://localhost") -> str:
    from ecsportal.asgi import application

    headers = [(b"origin", origin), (b"host", b"localhost")]
    if cookie:
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    await communicator.disconnect()
    return "connected" if connected else str(code)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_each_websocket_route_answers_each_role_as_the_matrix_says(world):
    cookies = {role: await database_sync_to_async(session_cookie)(user) for role, user in world.users.items()}
    for route, (path_of, expected) in WS_MATRIX.items():
        path = path_of(world)
        found = {role: await _connect(path, cookies.get(role)) for role in ROLES}
        assert found == expected, route


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("origin", [b"https://evil.example", b"http://localhost.evil.example", b"null"])
async def test_every_websocket_route_refuses_another_origin_even_with_a_valid_session(world, origin):
    cookie = await database_sync_to_async(session_cookie)(world.users["superuser"])
    for route, (path_of, _) in WS_MATRIX.items():
        assert await _connect(path_of(world), cookie, origin=origin) != "connected", route
