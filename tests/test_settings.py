"""Settings: safe defaults for development, and a refusal to start on unsafe production ones.

Each case imports `ecsportal.settings` in a fresh interpreter with a controlled environment,
as a deployment would, so nothing of this test process's own settings leaks in.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
GOOD_SECRET = "x7!Lr2-long-random-production-secret-9f0c1d2e3b4a5968778695a4b3c2d1e0"
GOOD_KEY = Fernet.generate_key().decode()
PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": GOOD_SECRET,
    "DJANGO_ALLOWED_HOSTS": "portal.example.com",
    "ECSPORTAL_SECRET_KEYS": GOOD_KEY,
}
REPORT = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'], "
    "'name': settings.DATABASES['default']['NAME'], "
    "'layer': settings.CHANNEL_LAYERS['default']['BACKEND'], "
    "'hosts': settings.ALLOWED_HOSTS, 'local_exec': settings.ECSPORTAL_LOCAL_EXEC, "
    "'debug': settings.DEBUG, 'secret_key_set': bool(settings.SECRET_KEY)}))"
)


def start(env: dict[str, str], code: str = REPORT) -> subprocess.CompletedProcess[str]:
    """Start Django with exactly `env` (plus PATH/HOME), the way a container would."""
    clean = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "PYTHONPATH"}}
    clean["DJANGO_SETTINGS_MODULE"] = "ecsportal.settings"
    clean["DJANGO_ENV_FILE"] = os.devnull  # a developer's own .env never leaks in; tests name their file
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def refusal(env: dict[str, str]) -> str:
    answer = start(env, code="import ecsportal.settings")
    assert answer.returncode != 0, "settings started although they should have refused"
    assert "ImproperlyConfigured" in answer.stderr
    return answer.stderr.strip().splitlines()[-1]


def report(env: dict[str, str]) -> dict:
    answer = start(env)
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout.strip().splitlines()[-1])


def test_good_production_settings_start():
    found = report(PRODUCTION)
    assert found["debug"] is False
    assert found["hosts"] == ["portal.example.com"]
    assert found["engine"] == "django.db.backends.sqlite3"
    assert found["layer"] == "ecsportal.layers.InMemoryChannelLayer"


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_static_root_means_the_default_never_the_working_directory(value):
    code = "import json, django; from django.conf import settings; django.setup(); print(json.dumps(str(settings.STATIC_ROOT)))"
    answer = start({**PRODUCTION, "DJANGO_STATIC_ROOT": value}, code=code)
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout.strip().splitlines()[-1]) == str(ROOT / "staticfiles")


def test_production_never_answers_execute_command_locally_by_default():
    assert report(PRODUCTION)["local_exec"] is False


@pytest.mark.parametrize(
    "secret",
    [None, "", "change-me", "django-insecure-development-only-key-never-use-in-production", "django-insecure-abc"],
)
def test_production_refuses_a_missing_or_placeholder_secret_key(secret):
    env = {k: v for k, v in PRODUCTION.items() if k != "DJANGO_SECRET_KEY"}
    if secret is not None:
        env["DJANGO_SECRET_KEY"] = secret
    assert "DJANGO_SECRET_KEY" in refusal(env)


@pytest.mark.parametrize("hosts", [None, "", " , "])
def test_production_refuses_empty_allowed_hosts(hosts):
    env = {k: v for k, v in PRODUCTION.items() if k != "DJANGO_ALLOWED_HOSTS"}
    if hosts is not None:
        env["DJANGO_ALLOWED_HOSTS"] = hosts
    assert "DJANGO_ALLOWED_HOSTS" in refusal(env)


@pytest.mark.parametrize("keys", [None, "", "not-a-fernet-key"])
def test_production_refuses_missing_or_malformed_encryption_keys(keys):
    env = {k: v for k, v in PRODUCTION.items() if k != "ECSPORTAL_SECRET_KEYS"}
    if keys is not None:
        env["ECSPORTAL_SECRET_KEYS"] = keys
    assert "ECSPORTAL_SECRET_KEYS" in refusal(env)


def test_development_starts_with_no_environment_at_all():
    found = report({"DJANGO_DEBUG": "true"})
    assert found["debug"] is True
    assert found["secret_key_set"] is True
    assert found["engine"] == "django.db.backends.sqlite3"


def test_empty_variables_from_env_example_mean_the_defaults():
    """.env.example leaves DATABASE_URL, REDIS_URL and the secret empty; that must not break dev."""
    found = report({"DJANGO_DEBUG": "true", "DATABASE_URL": "", "REDIS_URL": "", "DJANGO_SECRET_KEY": ""})
    assert found["engine"] == "django.db.backends.sqlite3"
    assert found["name"].endswith("db.sqlite3")
    assert found["layer"] == "ecsportal.layers.InMemoryChannelLayer"
    assert found["secret_key_set"] is True


def test_database_url_switches_to_postgresql():
    found = report({**PRODUCTION, "DATABASE_URL": "postgres://portal:pw@db.internal:5432/ecsportal"})
    assert found["engine"] == "django.db.backends.postgresql"
    assert found["name"] == "ecsportal"


def test_redis_url_switches_to_the_redis_channel_layer():
    found = report({**PRODUCTION, "REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert found["layer"] == "ecsportal.redislayer.RedisChannelLayer"  # channels_redis's, on a waiting pool


def test_env_example_lists_every_variable_the_settings_read():
    text = (ROOT / "ecsportal" / "settings.py").read_text()
    import re

    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', text))
    listed = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines() if "=" in line}
    assert read, "no env() calls found; has settings.py changed shape?"
    assert read <= listed, f"missing from .env.example: {sorted(read - listed)}"


def test_a_webhook_that_is_not_an_http_url_is_refused_without_echoing_it():
    message = refusal({**PRODUCTION, "ECSPORTAL_APPROVAL_WEBHOOK_URL": "hooks.example.com/T/B/SECRETPART"})
    assert "ECSPORTAL_APPROVAL_WEBHOOK_URL" in message
    assert "SECRETPART" not in message


WIRE_LOG = (
    "import json, logging, django; django.setup(); "
    "wire = logging.getLogger('ecsportal.ssm.websockets'); by_settings = wire.getEffectiveLevel(); "
    "wire.setLevel(logging.DEBUG); import ecsportal.ssm.client, ecsportal.ssm.emulator; "
    "print(json.dumps({'by_settings': by_settings, 'after_import': wire.level}))"
)


def test_the_data_channel_frame_logger_is_quiet_by_default_and_left_to_the_logging_settings():
    answer = start(PRODUCTION, code=WIRE_LOG)
    assert answer.returncode == 0, answer.stderr
    found = json.loads(answer.stdout.strip().splitlines()[-1])
    assert found["by_settings"] >= logging.INFO  # frame dumps (with the token) are DEBUG
    assert found["after_import"] == logging.DEBUG  # importing the SSM modules overrides nothing


def env_example() -> dict[str, str]:
    """.env.example as a production deployment would fill it: its values, with the three
    secrets it leaves blank set to good ones."""
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            name, value = line.split("=", 1)
            values[name.strip()] = value.strip()
    assert values["DJANGO_DEBUG"] == "false"
    values.pop("DJANGO_READ_DOT_ENV_FILE")  # the values are in the environment; no .env is read
    return {**values, **PRODUCTION}


def test_deploy_checks_pass_without_a_warning_under_the_production_example(tmp_path):
    env = {**env_example(), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    answer = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert "System check identified no issues (1 silenced)." in answer.stdout  # security.W021: preload, by choice


HEADERS = """
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
client = Client()
secure = client.get("/login/", secure=True)
plain = client.get("/login/")
health = client.get("/healthz")
cookie = secure.cookies["csrftoken"]
print(json.dumps({
    "headers": {k: secure.get(k, "") for k in ("Strict-Transport-Security", "X-Frame-Options", "Referrer-Policy",
                "X-Content-Type-Options", "Content-Security-Policy")},
    "cookie": {"secure": bool(cookie["secure"]), "httponly": bool(cookie["httponly"]), "samesite": cookie["samesite"]},
    "plain": [plain.status_code, plain.get("Location", "")],
    "health": health.status_code,
    "session_age": __import__("django.conf").conf.settings.SESSION_COOKIE_AGE,
}))
"""


def test_production_answers_carry_the_security_headers_and_secure_cookies(tmp_path):
    env = {**env_example(), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "ECSPORTAL_SESSION_HOURS": "8"}
    env["DJANGO_ALLOWED_HOSTS"] = "testserver"
    answer = start(env, code=HEADERS)
    assert answer.returncode == 0, answer.stderr
    found = json.loads(answer.stdout.strip().splitlines()[-1])
    headers = found["headers"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Content-Type-Options"] == "nosniff"
    policy = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert found["cookie"] == {"secure": True, "httponly": True, "samesite": "Lax"}
    assert found["plain"] == [301, "https://testserver/login/"]  # plain HTTP is sent to HTTPS
    assert found["health"] == 200  # except the container's own health check over loopback
    assert found["session_age"] == 8 * 3600


def env_file_from_example(tmp_path: Path, **values: str) -> Path:
    """`.env.example` copied and filled in as its first lines tell a user to."""
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        name = line.split("=", 1)[0]
        lines.append(f"{name}={values[name]}" if name in values and "=" in line else line)
    path = tmp_path / ".env"
    path.write_text("\n".join(lines) + "\n")
    return path


FILLED = {
    "DJANGO_SECRET_KEY": GOOD_SECRET,
    "ECSPORTAL_SECRET_KEYS": GOOD_KEY,
    "DJANGO_ALLOWED_HOSTS": "from-file.example",
}


def test_a_dot_env_copied_from_the_example_is_read_as_documented(tmp_path):
    """The example's own DJANGO_READ_DOT_ENV_FILE=true line is what makes the file count."""
    found = report({"DJANGO_ENV_FILE": str(env_file_from_example(tmp_path, **FILLED))})
    assert found["debug"] is False
    assert found["hosts"] == ["from-file.example"]
    assert found["secret_key_set"] is True


def test_a_dot_env_without_the_switch_is_ignored(tmp_path):
    path = env_file_from_example(tmp_path, **FILLED, DJANGO_READ_DOT_ENV_FILE="false")
    found = report({"DJANGO_ENV_FILE": str(path), "DJANGO_DEBUG": "true"})
    assert found["hosts"] != ["from-file.example"]


def test_the_environment_can_keep_a_dot_env_out_and_always_wins_over_it(tmp_path):
    path = str(env_file_from_example(tmp_path, **FILLED))
    kept_out = report({"DJANGO_ENV_FILE": path, "DJANGO_READ_DOT_ENV_FILE": "false", "DJANGO_DEBUG": "true"})
    assert kept_out["hosts"] != ["from-file.example"]
    overridden = report({"DJANGO_ENV_FILE": path, "DJANGO_ALLOWED_HOSTS": "from-environment.example"})
    assert overridden["hosts"] == ["from-environment.example"]
    assert overridden["debug"] is False  # the rest still comes from the file


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("DJANGO_READ_DOT_ENV_FILE=true\n", True),
        ("export DJANGO_READ_DOT_ENV_FILE = 'yes'  # read me\n", True),
        ('DJANGO_READ_DOT_ENV_FILE="1"\n', True),
        ("DJANGO_READ_DOT_ENV_FILE=true\nDJANGO_READ_DOT_ENV_FILE=false\n", False),  # the last line counts
        ("# DJANGO_READ_DOT_ENV_FILE=true\n", False),
        ("DJANGO_DEBUG=true\n", False),
        ("XDJANGO_READ_DOT_ENV_FILE=true\n", False),
    ],
)
def test_the_file_switch_is_read_like_a_boolean_setting(tmp_path, text, wanted):
    from ecsportal.envfile import dot_env_to_read

    path = tmp_path / ".env"
    path.write_text(text)
    assert (dot_env_to_read({}, path) == path) is wanted
    assert dot_env_to_read({"DJANGO_READ_DOT_ENV_FILE": "true"}, path) == path
    assert dot_env_to_read({"DJANGO_READ_DOT_ENV_FILE": "false"}, path) is None
    assert dot_env_to_read({"DJANGO_READ_DOT_ENV_FILE": "true"}, tmp_path / "missing") is None


def test_a_short_metrics_token_is_refused_without_echoing_it():
    message = refusal({**PRODUCTION, "ECSPORTAL_METRICS_TOKEN": "short-Secr3t"})
    assert "ECSPORTAL_METRICS_TOKEN" in message
    assert "short-Secr3t" not in message


def test_an_unknown_log_format_is_refused():
    assert "ECSPORTAL_LOG_FORMAT" in refusal({**PRODUCTION, "ECSPORTAL_LOG_FORMAT": "xml"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ECSPORTAL_LOGIN_FAILURE_LIMIT", "0"),
        ("ECSPORTAL_LOGIN_COOLOFF_MINUTES", "0"),
        ("ECSPORTAL_SESSION_HOURS", "0"),
        ("ECSPORTAL_SESSION_HOURS", "-1"),
    ],
)
def test_login_and_session_settings_that_would_lock_everyone_out_or_in_are_refused(name, value):
    assert name in refusal({**PRODUCTION, name: value})


SNAPSHOT = """
import threading, django
django.setup()
from django.db import connection, transaction
with connection.cursor() as c:
    c.execute("CREATE TABLE t (n integer)")
    c.execute("INSERT INTO t VALUES (0)")
read, written, outcome = threading.Event(), threading.Event(), []

def page():  # a view: reads, then writes, in one transaction
    try:
        with transaction.atomic():
            with connection.cursor() as c:
                c.execute("SELECT n FROM t")
                read.set()
                written.wait(3)
                c.execute("UPDATE t SET n = n + 1")
        outcome.append("ok")
    except Exception as exc:
        outcome.append(type(exc).__name__ + ": " + str(exc))
    finally:
        connection.close()

def runner():  # the runner's own connection commits a row meanwhile
    read.wait(3)
    with connection.cursor() as c:
        c.execute("UPDATE t SET n = n + 10")
    written.set()
    connection.close()

threads = [threading.Thread(target=page), threading.Thread(target=runner)]
[t.start() for t in threads]
[t.join() for t in threads]
with connection.cursor() as c:
    c.execute("SELECT n FROM t")
    print(outcome[0], c.fetchone()[0])
"""


def test_a_page_transaction_survives_the_runner_writing_on_its_own_connection(tmp_path):
    # In WAL a deferred transaction that read before another connection committed fails at its
    # first write, at once (no busy wait). The settings begin transactions IMMEDIATE on SQLite,
    # so the other connection waits for the page instead.
    answer = start({**PRODUCTION, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}, code=SNAPSHOT)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.split() == ["ok", "11"]
