"""/healthz: JSON for load balancers and the Dockerfile's HEALTHCHECK, with no login."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.test import override_settings

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.django_db


def test_healthz_answers_200_with_json_and_no_login(client):
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/json"
    assert answer.json() == {"status": "ok", "database": "ok", "channel_layer": "ok"}


def test_healthz_is_503_when_the_channel_layer_does_not_answer(client):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    layers = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [closed]}}}
    with override_settings(CHANNEL_LAYERS=layers):
        answer = client.get("/healthz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "unhealthy"
    assert body["database"] == "ok"
    assert body["channel_layer"] != "ok"


def test_healthz_is_503_when_the_database_does_not_answer():
    """A fresh process whose DATABASE_URL points at a port where no PostgreSQL listens."""
    code = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client().get('/healthz'); print(r.status_code, json.dumps(r.json()))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ecsportal.settings",
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": f"postgres://nobody:pw@127.0.0.1:{free_port()}/nothing?connect_timeout=2",
        "REDIS_URL": "",
    }
    answer = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert answer.returncode == 0, answer.stderr
    status, body = answer.stdout.strip().splitlines()[-1].split(" ", 1)
    assert status == "503"
    found = json.loads(body)
    assert found["status"] == "unhealthy"
    assert found["database"] == "OperationalError"
    assert found["channel_layer"] == "ok"


def test_healthz_answers_a_load_balancer_probing_by_address(client):
    """An ALB health check sends the target's IP as Host, which is not an allowed host."""
    answer = client.get("/healthz", HTTP_HOST="10.0.3.7:8000")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


def test_only_healthz_skips_the_host_check(client):
    assert client.get("/login/", HTTP_HOST="10.0.3.7:8000").status_code == 400
    assert client.get("/healthz/../login/", HTTP_HOST="10.0.3.7:8000").status_code == 400
    assert client.post("/healthz", HTTP_HOST="10.0.3.7:8000").status_code == 400
