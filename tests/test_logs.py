"""Structured logs: request IDs on HTTP requests, run IDs on the runner's records, the JSON format."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from channels.db import database_sync_to_async

from ecsportal import logs
from ecsportal.runs import runner
from tests.conftest import ROOT

HEX_ID = re.compile(r"[0-9a-f]{32}")


@contextmanager
def json_lines(level: int = logging.DEBUG) -> Iterator[list[dict]]:
    """Every record logged meanwhile, as the JSON format writes it (parsed back)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ContextFilter())
    root = logging.getLogger()
    old_level, access_level = root.level, logs.access_logger.level
    root.addHandler(handler)
    root.setLevel(level)
    logs.access_logger.setLevel(level)
    found: list[dict] = []
    try:
        yield found
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        logs.access_logger.setLevel(access_level)
        found.extend(json.loads(line) for line in stream.getvalue().splitlines())


def test_a_request_log_line_carries_its_id_as_json_in_a_real_process():
    """The settings' own wiring: ECSPORTAL_LOG_FORMAT=json makes stderr one JSON object per line."""
    code = (
        "import django; django.setup(); from django.test import Client; "
        "r = Client().get('/login/', headers={'X-Request-ID': 'edge-42.abc'}); "
        "print(r.status_code, r['X-Request-ID'])"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ecsportal.settings",
        "DJANGO_DEBUG": "true",
        "DJANGO_ENV_FILE": os.devnull,
        "ECSPORTAL_LOG_FORMAT": "json",
        "DJANGO_LOG_LEVEL": "INFO",
        "DATABASE_URL": "",
        "REDIS_URL": "",
    }
    answer = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.split() == ["200", "edge-42.abc"]
    lines = [json.loads(line) for line in answer.stderr.splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "ecsportal.access"]
    assert len(access) == 1, lines
    assert access[0]["request_id"] == "edge-42.abc"
    assert access[0]["level"] == "INFO"
    assert (access[0]["method"], access[0]["path"], access[0]["status"]) == ("GET", "/login/", 200)
    assert access[0]["message"].startswith("GET /login/ 200 ")
    assert access[0]["run_id"] is None


@pytest.mark.django_db
def test_every_record_inside_a_request_carries_the_id_the_answer_returns(client):
    with json_lines() as lines:
        answer = client.get("/no/such/page/")  # Django itself logs "Not Found" inside the request
    rid = answer["X-Request-ID"]
    assert HEX_ID.fullmatch(rid)
    by_logger = {line["logger"]: line for line in lines}
    assert by_logger["django.request"]["request_id"] == rid
    assert by_logger["ecsportal.access"]["request_id"] == rid
    assert by_logger["ecsportal.access"]["status"] == answer.status_code
    # Outside the request, nothing carries it any more.
    with json_lines() as after:
        logging.getLogger("ecsportal.test").warning("later")
    assert after[0]["request_id"] is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("0f8fad5b-d9cb-469f-a165-70867728950e", True),
        ("Root=1-5759e988-bd862e3fe1be46a994272793", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("two words", False),
        ("forged\nERROR line", False),
        ('quote"d', False),
        ("", False),
    ],
)
def test_a_sane_incoming_request_id_is_kept_and_anything_else_replaced(client, incoming, kept):
    answer = client.get("/login/", headers={"X-Request-ID": incoming})
    if kept:
        assert answer["X-Request-ID"] == incoming
    else:
        assert HEX_ID.fullmatch(answer["X-Request-ID"])


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_async_path_gives_each_request_its_own_id(async_client):
    with json_lines() as lines:
        first = await async_client.get("/login/")
        second = await async_client.get("/login/", headers={"X-Request-ID": "abc-123"})
    assert first["X-Request-ID"] != second["X-Request-ID"]
    assert second["X-Request-ID"] == "abc-123"
    access = [line["request_id"] for line in lines if line["logger"] == "ecsportal.access"]
    assert access == [first["X-Request-ID"], "abc-123"]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_runners_records_carry_the_run_id_also_from_its_database_threads(monkeypatch):
    """A runner that fails: its own error line and the database thread's line both name the run."""

    def broken_load(run_pk: int) -> None:
        logging.getLogger("ecsportal.runs.runner").warning("loading run in a database thread")
        raise RuntimeError("boom")

    monkeypatch.setattr(runner, "_load", broken_load)
    with json_lines() as lines:
        await runner.execute_run(4242)
        await database_sync_to_async(logging.getLogger("ecsportal.test").warning)("after the run")
    mine = {line["message"]: line for line in lines}
    assert mine["loading run in a database thread"]["run_id"] == 4242
    failed = mine["run 4242: the runner failed"]
    assert failed["run_id"] == 4242
    assert failed["level"] == "ERROR"
    assert "RuntimeError: boom" in failed["exception"]
    assert mine["after the run"]["run_id"] is None


def test_the_plain_format_appends_the_ids_and_keeps_a_traceback_below_them():
    formatter = logs.PlainFormatter("%(levelname)s %(name)s %(message)s")
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    record.request_id, record.run_id = "r1", 7
    first, *rest = formatter.format(record).splitlines()
    assert first == "ERROR x failed [request_id=r1 run_id=7]"
    assert rest[-1] == "ValueError: bad"
    record.request_id = record.run_id = None
    record.exc_info = record.exc_text = None
    assert formatter.format(record) == "ERROR x failed"
