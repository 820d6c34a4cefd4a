"""The portal as the benchmarks serve it in a child process: DEBUG off, daphne, moto, its own
SQLite database, the in-process runner, the SSM agent emulator in a process of its own
(relay.py's `--agent`), and a benchmark-only ASGI wrapper for starting runs.

Shared so that each benchmark does not copy the setup (relay.py and interactive.py use it).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Callable
from typing import Any

from tests.benchmarks.relay import RemoteAgent


def portal_environment(db: str, **extra: str) -> None:
    """The settings every benchmark server runs with; `extra` adds or overrides some."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "ecsportal.settings",
            # As deployed: with DEBUG on, Django formats every query's SQL for its query log.
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_COOKIES": "false",
            "ECSPORTAL_SECRET_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "DATABASE_URL": f"sqlite:///{db}",
            # Every run here is one operator's: the per-user slot limit (50) would queue the rest.
            "ECSPORTAL_RUNS_MAX_ACTIVE_PER_USER": "0",
            "REDIS_URL": "",
            "ECSPORTAL_LOCAL_EXEC": "true",
            "ECSPORTAL_STOPPED_COLLECT_INTERVAL": "0",
            "ECSPORTAL_APPROVAL_SWEEP_SECONDS": "0",
            "ECSPORTAL_RUN_SWEEP_SECONDS": "0",
            "ECSPORTAL_RUN_TASK_CHECK_SECONDS": "30",
            "ECSPORTAL_INVENTORY_CACHE_SECONDS": "60",
            "ECSPORTAL_SOCKETS_PER_USER": "0",  # many sockets, all one user
            "ECSPORTAL_RUN_OUTPUT_BUDGET_BYTES": str(2**30),  # memory rounds print 100 MB
            **extra,
        }
    )


def boot_portal(
    agent: str, *, bulk_agent: str | None = None, is_bulk: Callable[[str], bool] = lambda command: False
) -> dict[str, Any]:
    """Django set up and migrated, moto seeded, ExecuteCommand's sessions registered on the
    agent process (commands for which `is_bulk` is true on `bulk_agent`'s, when given: in ECS
    every container has an agent of its own, so one emulator serving everyone's floods would
    delay the others' echo as no deployment does). Returns the seeded `accounts`, the
    `operator` and its session `cookie`."""
    import logging

    import django

    django.setup()
    logging.disable(logging.INFO)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from ecsportal.aws import local, sessions
    from ecsportal.demo import localaws
    from ecsportal.demo.seed import seed_portal

    call_command("migrate", interactive=False, verbosity=0)
    aws = localaws.LocalAws()
    sessions.configure(endpoint_url=aws.endpoint_url, local_exec=True, connect_timeout=2, read_timeout=10)
    remote = RemoteAgent(agent)
    bulk = RemoteAgent(bulk_agent) if bulk_agent else remote
    local.set_session_registrar(
        lambda request: (bulk if is_bulk(request.command) else remote).register_session(
            session_id=request.session_id, token=request.token, command=request.command, container=request.container
        )
    )
    localaws.seed_iam(aws.endpoint_url)
    localaws.seed_aws(aws.endpoint_url)
    accounts = seed_portal(password="bench")
    operator = get_user_model().objects.get(username="operator")
    client = Client()
    client.force_login(operator)
    return {"accounts": accounts, "operator": operator, "cookie": client.cookies["sessionid"].value}


def bench_app(handlers: dict[str, Callable[[dict], Any]]):
    """The portal's ASGI application, with POST `/__bench/<name>` calling `handlers[name](body)`
    in a thread (the JSON body; the answer is its result as text)."""
    import daphne.server  # noqa: F401  (loaded before the application, as the daphne command does: its hooks install)
    from asgiref.sync import sync_to_async

    from ecsportal.asgi import application

    async def app(scope: dict, receive, send) -> None:
        name = scope["path"].removeprefix("/__bench/") if scope["type"] == "http" else None
        if name in handlers:
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            answer = await sync_to_async(handlers[name])(json.loads(body or b"{}"))
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": str(answer).encode()})
            return
        await application(scope, receive, send)

    return app


def run_daphne(app, port: int, **options: Any) -> None:
    """Serve `app` on 127.0.0.1:`port` until terminated."""
    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server

    Server(
        application=app,
        endpoints=build_endpoint_description_strings(host="127.0.0.1", port=port),
        signal_handlers=True,
        verbosity=0,
        **options,
    ).run()
