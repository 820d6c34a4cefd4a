"""The deployment files: the image's entry point serves, and the examples name real settings.

No Docker engine runs here, so the image itself is not built in the suite; its entry point is
started the way the image starts it, and the compose file, ECS task definitions and IAM
policies are checked against the settings the portal reads and against docs/deploy.md.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

from tests.conftest import ROOT, free_port

DEPLOY = ROOT / "deploy"
ROLES = {"web", "runner", "collector", "migrate"}
# Variables the compose file sets for its own services (PostgreSQL's image) or AWS's SDK reads.
NOT_PORTAL_SETTINGS = {"POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD", "AWS_DEFAULT_REGION"}
REQUIRED = {"DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "ECSPORTAL_SECRET_KEYS"}
DEV_ONLY = {"moto", "pytest", "pytest-django", "pytest-asyncio", "hypothesis", "playwright", "ruff", "awscli", "flask"}


def settings_listed() -> set[str]:
    """Every variable .env.example documents (the settings test keeps it complete)."""
    return {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-r "):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"{path.name}: {line!r} is not pinned"
        found[name.lower().replace("_", "-")] = version
    return found


def test_requirements_split_runtime_from_development():
    runtime, dev = pins(ROOT / "requirements.txt"), pins(ROOT / "requirements-dev.txt")
    assert (ROOT / "requirements-dev.txt").read_text().count("-r requirements.txt") == 1
    assert not set(runtime) & set(dev), "a package pinned in both files"
    assert not DEV_ONLY & set(runtime), "development tools in the runtime set"
    assert DEV_ONLY <= set(dev)
    assert {"django", "channels", "daphne", "boto3", "psycopg", "channels-redis", "whitenoise"} <= set(runtime)


def test_the_image_installs_the_runtime_set_and_leaves_tests_docs_and_ci_out():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "requirements-dev" not in dockerfile
    assert "-r /tmp/requirements.txt" in dockerfile
    assert re.search(r"^USER 10001", dockerfile, re.M)
    assert "ecsportal.healthcheck" in dockerfile
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {"tests", "docs", ".ci", ".venv", "var", ".env", "requirements-dev.txt", ".git"} <= ignored
    assert "!deploy/entrypoint.sh" in ignored


def test_the_compose_file_runs_each_role_with_real_settings():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    known = settings_listed() | NOT_PORTAL_SETTINGS
    roles = {}
    for name, service in services.items():
        if service.get("image", "").startswith("${ECSPORTAL_IMAGE"):
            roles[name] = service["command"][0]
            unknown = set(service["environment"]) - known
            assert not unknown, f"{name} sets variables the portal does not read: {unknown}"
            assert REQUIRED <= set(service["environment"])
            assert service["environment"]["ECSPORTAL_STOPPED_COLLECT_INTERVAL"] == "0"
            assert service["environment"]["ECSPORTAL_RUNNER_MODE"] == "worker"
    assert set(roles.values()) == ROLES
    assert services["collector"]["command"] == ["collector", "300"]
    # The secrets have no defaults: compose refuses to start without them.
    assert ":?" in services["web"]["environment"]["DJANGO_SECRET_KEY"]
    assert ":?" in services["web"]["environment"]["ECSPORTAL_SECRET_KEYS"]


@pytest.mark.parametrize("name", ["web", "runner", "collector"])
def test_the_ecs_task_definitions_run_a_role_with_real_settings(name):
    task = json.loads((DEPLOY / "ecs" / f"task-definition-{name}.json").read_text())
    (container,) = task["containerDefinitions"]
    assert container["command"][0] in ROLES
    names = [item["name"] for item in container["environment"] + container["secrets"]]
    assert len(names) == len(set(names))
    assert not set(names) - settings_listed() - NOT_PORTAL_SETTINGS
    assert REQUIRED <= set(names)
    secrets = {item["name"] for item in container["secrets"]}
    assert {"DJANGO_SECRET_KEY", "ECSPORTAL_SECRET_KEYS", "DATABASE_URL", "ECSPORTAL_METRICS_TOKEN"} <= secrets
    service = json.loads((DEPLOY / "ecs" / f"service-{name}.json").read_text())
    assert service["taskDefinition"] == task["family"]
    if name == "web":
        assert container["healthCheck"]["command"] == ["CMD", "python", "-m", "ecsportal.healthcheck"]
        assert service["loadBalancers"][0]["containerPort"] == container["portMappings"][0]["containerPort"]
    if name == "collector":
        assert service["desiredCount"] == 1
        assert service["deploymentConfiguration"]["maximumPercent"] == 100  # never two at once


def test_the_iam_policies_in_the_doc_are_the_files():
    doc = (ROOT / "docs" / "deploy.md").read_text()
    blocks = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", doc, re.S) if '"Version"' in block]
    for path in sorted((DEPLOY / "iam").glob("*.json")):
        policy = json.loads(path.read_text())
        assert policy["Version"] == "2012-10-17"
        assert policy in blocks, f"docs/deploy.md does not show {path.name} as it is"


def test_the_doc_names_every_setting():
    doc = (ROOT / "docs" / "deploy.md").read_text()
    missing = {name for name in settings_listed() if f"`{name}`" not in doc}
    assert not missing, f"docs/deploy.md does not mention {sorted(missing)}"


def test_the_dockerfile_needs_no_frontend_from_a_registry():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"^#\s*syntax\s*=", dockerfile, re.M | re.I)  # BuildKit would pull it, even offline


def test_every_compose_service_runs_under_an_init():
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    assert {name for name, service in services.items() if service.get("init") is not True} == set()


def test_the_deploy_doc_is_true_to_the_image():
    doc = (ROOT / "docs" / "deploy.md").read_text()
    assert "has not\nbeen built" not in doc and "not been built" not in doc.replace("\n", " ")
    assert re.search(r"docker run [^\n]*--init", doc)
    assert "10001:10001" in doc
    fernet = [line for line in doc.splitlines() if "Fernet.generate_key" in line]
    assert fernet and all("docker run --rm ecsportal python -c" in line for line in fernet)


def _unprivileged() -> list[str]:
    """How to run a command as a user that cannot write a directory root made (setpriv as root)."""
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []


@pytest.mark.parametrize("role", ["web", "migrate", "runner", "collector"])
def test_the_entry_point_says_what_is_wrong_when_the_database_directory_is_not_writable(role):
    # Made where any user can reach it (pytest's own temporary tree is root's alone), owned by
    # the test's user and not writable by the one the entry point runs as: a root-owned bind mount.
    with tempfile.TemporaryDirectory() as parent:
        os.chmod(parent, 0o755)  # noqa: S103  (readable, as a mount point is; still not writable)
        data = Path(parent) / "var"
        data.mkdir(mode=0o755)
        if os.geteuid() != 0:
            data.chmod(0o555)
        _assert_refused(data, role)


def _assert_refused(data: Path, role: str) -> None:
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": f"sqlite:///{data / 'db.sqlite3'}"}
    answer = subprocess.run(
        [*_unprivileged(), "sh", str(DEPLOY / "entrypoint.sh"), role],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        cwd=ROOT,
    )
    assert answer.returncode == 78, answer.stderr
    assert f"cannot write the SQLite database {data / 'db.sqlite3'}" in answer.stderr
    assert "chown -R 10001:10001" in answer.stderr and "docs/deploy.md" in answer.stderr
    assert not (data / "db.sqlite3").exists()


def test_the_entry_point_passes_other_commands_through():
    answer = subprocess.run(
        [str(DEPLOY / "entrypoint.sh"), "echo", "as", "given"], capture_output=True, text=True, timeout=30
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout == "as given\n"


def test_the_web_role_migrates_and_serves_with_its_daphne_flags(tmp_path):
    """The image's command, started as the image starts it (production settings, JSON logs)."""
    port = free_port()
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "PORT": str(port),
        "BIND": "127.0.0.1",
        "DJANGO_ENV_FILE": os.devnull,
        "DJANGO_SECRET_KEY": "x7!Lr2-long-random-production-secret-9f0c1d2e3b4a5968778695a4b3c2d1e0",
        "DJANGO_ALLOWED_HOSTS": "portal.example.com",
        "ECSPORTAL_SECRET_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_BEHIND_TLS_PROXY": "true",  # as in production: plain HTTP not from the proxy is redirected
        "ECSPORTAL_LOG_FORMAT": "json",
        "ECSPORTAL_STOPPED_COLLECT_INTERVAL": "0",
        "ECSPORTAL_APPROVAL_SWEEP_SECONDS": "0",
        "ECSPORTAL_RUN_SWEEP_SECONDS": "0",
    }
    server = subprocess.Popen(
        [str(DEPLOY / "entrypoint.sh"), "web"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        healthy = False
        for _ in range(120):  # bounded: migrations on a fresh SQLite file, then daphne
            if server.poll() is not None:
                break
            check = subprocess.run(
                [sys.executable, "-m", "ecsportal.healthcheck"], cwd=ROOT, env=env, capture_output=True, timeout=10
            )
            if check.returncode == 0:
                healthy = True
                break
            time.sleep(0.5)
        assert healthy, "the web role never became healthy"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/login/",
            # as the TLS proxy forwards it
            headers={"Host": "portal.example.com", "X-Request-ID": "deploy-test-1", "X-Forwarded-Proto": "https"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
            assert answer.headers["X-Request-ID"] == "deploy-test-1"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert (tmp_path / "db.sqlite3").exists(), "the web role did not migrate"
    access = [json.loads(line) for line in output.splitlines() if line.startswith("{") and "ecsportal.access" in line]
    assert any(line["request_id"] == "deploy-test-1" and line["path"] == "/login/" for line in access), output
