"""`manage.py demo` as a user runs it: in a subprocess, on its own SQLite, over real HTTP."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys

import requests

from tests.conftest import ROOT


def test_demo_serves_healthz(demo_server):
    answer = requests.get(f"{demo_server}/healthz", timeout=10)
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


def test_viewer_logs_in_and_sees_a_cluster(demo_server):
    browser = requests.Session()
    form = browser.get(f"{demo_server}/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    answer = browser.post(
        f"{demo_server}/login/",
        data={"username": "viewer", "password": "demo", "csrfmiddlewaretoken": token, "next": "/inventory/"},
        headers={"Referer": f"{demo_server}/login/"},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.url == f"{demo_server}/inventory/"
    assert ">prod-web</a>" in answer.text
    assert ">staging</a>" in answer.text  # reached by assume-role with the External ID


def test_a_wrong_password_is_refused(demo_server):
    browser = requests.Session()
    form = browser.get(f"{demo_server}/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    answer = browser.post(
        f"{demo_server}/login/",
        data={"username": "viewer", "password": "wrong", "csrfmiddlewaretoken": token},
        timeout=10,
    )
    assert answer.url == f"{demo_server}/login/"
    assert "Please enter a correct username and password" in answer.text
    assert browser.get(f"{demo_server}/inventory/", timeout=10).url.startswith(f"{demo_server}/login/")


def test_a_login_without_csrf_token_is_refused(demo_server):
    answer = requests.post(f"{demo_server}/login/", data={"username": "viewer", "password": "demo"}, timeout=10)
    assert answer.status_code == 403


def run_seed(database: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_DEBUG": "true",
        "DJANGO_SETTINGS_MODULE": "ecsportal.settings",
        "DATABASE_URL": f"sqlite:///{database}",
        "REDIS_URL": "",
        "ECSPORTAL_DEMO_PASSWORD": "demo",
    }
    return subprocess.run(
        [sys.executable, "manage.py", "demo", "--no-serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def counts(database: str) -> dict[str, int]:
    with sqlite3.connect(database) as db:
        return {
            table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in ("auth_user", "accounts_awsaccount", "accounts_membership")
        }


def test_the_seed_is_idempotent(tmp_path):
    database = str(tmp_path / "demo.sqlite3")
    first = run_seed(database)
    assert first.returncode == 0, first.stderr
    assert "ecsportal demo is ready at http://127.0.0.1:8000/" in first.stdout
    assert "viewer" in first.stdout
    after_first = counts(database)
    assert after_first == {"auth_user": 5, "accounts_awsaccount": 2, "accounts_membership": 8}
    second = run_seed(database)
    assert second.returncode == 0, second.stderr
    assert counts(database) == after_first


def test_the_demo_refuses_to_serve_beyond_loopback():
    answer = subprocess.run(
        [sys.executable, "manage.py", "demo", "--host", "0.0.0.0", "--no-serve"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_DEBUG": "true", "DJANGO_SETTINGS_MODULE": "ecsportal.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.returncode == 2
    assert "loopback only" in answer.stderr


def test_the_demo_refuses_to_seed_a_production_configuration(tmp_path):
    from cryptography.fernet import Fernet

    database = str(tmp_path / "prod.sqlite3")
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "a-long-random-production-secret-0123456789abcdef0123456789",
        "DJANGO_ALLOWED_HOSTS": "portal.example.com",
        "ECSPORTAL_SECRET_KEYS": Fernet.generate_key().decode(),
        "DJANGO_SETTINGS_MODULE": "ecsportal.settings",
        "DATABASE_URL": f"sqlite:///{database}",
        "REDIS_URL": "",
    }
    answer = subprocess.run(
        [sys.executable, "manage.py", "demo", "--no-serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.returncode == 2
    assert "DJANGO_DEBUG=true" in answer.stderr
    assert not os.path.exists(database)  # nothing was migrated, nobody was created


def test_aws_only_serves_the_data_channels_from_a_fleet_that_ends_with_it(tmp_path):
    """`demo --aws-only --emulator-processes 2` (what scale.py starts): sessions registered on
    the address it prints run under one of its emulator processes, and those end with it."""
    import asyncio
    import signal
    import time
    from pathlib import Path

    from ecsportal.ssm.client import SsmClient
    from ecsportal.ssm.emulator import remote_registrar

    env = {
        **os.environ,
        "DJANGO_DEBUG": "true",
        "DJANGO_SETTINGS_MODULE": "ecsportal.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "REDIS_URL": "",
        "ECSPORTAL_LOCAL_EXEC_EMULATOR_KEY": "the-key",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "demo.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "demo", "--aws-only", "--emulator-processes", "2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    fleet: list[int] = []
    try:
        # An allowance, not a measure: migrating a new SQLite and seeding took over 120 s under
        # shake (load 25 and a busy core).
        deadline = time.monotonic() + 400
        while "Press Ctrl-C to stop." not in log_path.read_text() and proc.poll() is None:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        text = log_path.read_text()
        url = re.search(r"ECSPORTAL_LOCAL_EXEC_EMULATOR=(\S+)", text)
        assert url, text
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == proc.pid and (
                    b"ecsportal.ssm.fleet" in (stat.parent / "cmdline").read_bytes()
                ):
                    fleet.append(int(stat.parent.name))
            except (OSError, ValueError):
                continue
        assert len(fleet) == 2
        stream = remote_registrar(url.group(1), "the-key")(session_id="demo-fleet", token="t", command="echo hi")

        async def run() -> bytes:
            async with SsmClient(stream, "t") as session:
                return b"".join([c async for c in session])

        assert asyncio.run(run()) == b"hi\r\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)

    def running(pid: int) -> bool:  # a zombie (exited, its new parent not reaping yet) has ended
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 30
    while any(map(running, fleet)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(running, fleet))  # no emulator process outlives the demo
