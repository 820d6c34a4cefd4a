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
    assert found["layer"] == "channels_redis.core.RedisChannelLayer"


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
