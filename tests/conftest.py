"""Shared fixtures: the local AWS, a fixed cast of users, a running demo portal, a browser.

The cast follows healthchecks' habit: an admin, one user per role, and an outsider who is a
member of another account only, so every access test reads the same way.
"""

from __future__ import annotations

import asyncio
import asyncio.runners
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from ecsportal.demo import localaws
from tests.deployment import free_port, wait_for_http

# The SSM agent emulator runs shells on this machine with the tests' environment, and a shell's
# "auto" command is an interactive bash, which reads $HOME/.bashrc: this machine's (pyenv init)
# took 60 s to start. The tests, and the demo servers they start, get an empty home of their own.
_HOME = Path(os.environ.get("TMPDIR", "/tmp")) / f"ecsportal-tests-home-{os.getpid()}"
_HOME.mkdir(parents=True, exist_ok=True)
os.environ["HOME"] = str(_HOME)

ROOT = Path(__file__).resolve().parent.parent


def _cancel_all_tasks_insistently(loop: asyncio.AbstractEventLoop) -> None:
    """asyncio.Runner's shutdown step, as the test loops use it, made to insist.

    The stock step cancels every task once and waits for all of them without a bound. A task
    that swallows one cancellation (seen once in CI: a consumer left connected at a test's end,
    whose channels_redis receive loop went on issuing BZPOPMIN every 5 s) then holds the whole
    suite for ever. Here each round cancels what is left and waits at most a second; after
    twenty rounds what still runs is reported, and the loop is closed anyway.
    """
    pending: set[asyncio.Task] = set()
    everything: set[asyncio.Task] = set()
    for _ in range(20):
        pending = {task for task in asyncio.all_tasks(loop) if not task.done()}
        if not pending:
            break
        everything |= pending
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.wait(pending, timeout=1))
    for task in everything:
        if task.done() and not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during a test loop's shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )
    stuck = [task for task in pending if not task.done()]
    if stuck:
        warnings.warn(f"tasks that would not end at a test loop's shutdown: {stuck!r}", stacklevel=1)


asyncio.runners._cancel_all_tasks = _cancel_all_tasks_insistently  # see the docstring
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def local_aws() -> Iterator[localaws.LocalAws]:
    """moto's server on loopback with the demo's estate, and the AWS layer pointed at it."""
    from ecsportal.aws import sessions

    aws = localaws.LocalAws()
    localaws.seed_iam(aws.endpoint_url)
    aws.seeded = localaws.seed_aws(aws.endpoint_url)
    sessions.configure(
        endpoint_url=aws.endpoint_url, local_exec=True, connect_timeout=2, read_timeout=10, max_attempts=2
    )
    yield aws
    sessions.configure(endpoint_url=None)
    aws.stop()


@pytest.fixture(scope="session")
def data_channel(local_aws: localaws.LocalAws) -> Iterator[object]:
    """The SSM agent emulator, receiving every ExecuteCommand the local seam answers."""
    from ecsportal.aws import local

    emulator = localaws.start_data_channel()
    yield emulator
    local.set_session_registrar(None)
    emulator.stop()


@pytest.fixture
def cast(db: None) -> SimpleNamespace:
    """Demo users and accounts, plus an outsider who belongs only to a third account."""
    from django.contrib.auth import get_user_model

    from ecsportal.accounts.models import AwsAccount, Membership, Role
    from ecsportal.demo.seed import seed_portal

    accounts = seed_portal(password="pw-for-tests")
    users = {u.username: u for u in get_user_model().objects.all()}
    other = AwsAccount.objects.create(
        name="Other Team",
        account_id="999999999999",
        regions=["eu-west-1"],
        role_arn="arn:aws:iam::999999999999:role/ecsportal-access",  # moto: an empty account of its own
    )
    outsider = get_user_model().objects.create_user("outsider", password="pw-for-tests")
    Membership.objects.create(user=outsider, account=other, role=Role.ADMIN)
    return SimpleNamespace(
        prod=accounts["prod"],
        staging=accounts["staging"],
        other=other,
        outsider=outsider,
        password="pw-for-tests",
        **users,
    )


@pytest.fixture
def login(client):
    """`login(user)` → the Django test client logged in as that user."""

    def _login(user):
        client.force_login(user)
        return client

    return _login


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`manage.py demo` in a subprocess, as a user starts it, on a free port and its own SQLite."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("demo")
    env = {
        **os.environ,
        "DJANGO_DEBUG": "true",
        "DJANGO_SETTINGS_MODULE": "ecsportal.settings",
        "DATABASE_URL": f"sqlite:///{workdir / 'demo.sqlite3'}",
        "REDIS_URL": "",
        "ECSPORTAL_DEMO_PASSWORD": "demo",
        # Every browser test logs in from 127.0.0.1: headroom for the tests that type a wrong
        # password on purpose (tests/test_browser_security.py locks it out on purpose, then lifts it).
        "ECSPORTAL_LOGIN_FAILURE_LIMIT": "10",
        # tests/test_browser_budgets.py fills the budget on purpose: a small one keeps it quick.
        "ECSPORTAL_SOCKETS_PER_USER": "20",
        "PYTHONUNBUFFERED": "1",
    }
    log = open(workdir / "demo.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=90)
    except RuntimeError:
        proc.kill()
        raise RuntimeError("demo did not start:\n" + (workdir / "demo.log").read_text()) from None
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def chromium_or_skip() -> str:
    if Path(CHROMIUM).exists() or shutil.which("chromium"):
        return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if os.environ.get("CI") == "true":
        pytest.fail("Chromium is required under CI=true (apt-get install -y chromium).")
    pytest.skip("Debian's Chromium is not installed (apt-get install -y chromium); browser tests skipped.")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Per module: Playwright's sync API keeps an event loop running while it lives, which would
    break every asyncio test (WebSocket consumers) collected after a browser test."""
    path = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def page_as(browser, demo_server):
    """`page_as("viewer")` → a Playwright page in a fresh context, logged in to the demo
    (`width=` for a narrower window)."""
    contexts = []

    def _page_as(username: str, password: str = "demo", *, width: int = 1400):
        context = browser.new_context(viewport={"width": width, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15000)
        page.goto(f"{demo_server}/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{demo_server}/")
        return page

    yield _page_as
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> None:
    """Keep a screenshot of what the test saw (var/screenshots/), for people to look at."""
    folder = ROOT / "var" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


@pytest.fixture
def aws_settings(local_aws):
    """`aws_settings(**options)` reconfigures the AWS layer for one test; restored afterwards."""
    import dataclasses

    from ecsportal.aws import sessions

    saved = dataclasses.asdict(sessions.current_settings())

    def _configure(**options):
        sessions.configure(**options)
        return sessions.current_settings()

    yield _configure
    sessions.configure(**saved)


@pytest.fixture
def unreachable_aws(aws_settings):
    """The AWS endpoint is a closed port on loopback, with short timeouts and no retries."""
    return aws_settings(
        endpoint_url=f"http://127.0.0.1:{free_port()}", connect_timeout=0.5, read_timeout=0.5, max_attempts=1
    )
