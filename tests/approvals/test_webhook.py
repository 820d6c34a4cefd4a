"""The chat webhook, against a real HTTP server on loopback."""

from __future__ import annotations

import json
import logging
import queue
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ecsportal.approvals import notify, services
from ecsportal.stops.services import stop_request
from tests.conftest import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat():
    """A loopback server that records every JSON body POSTed to it."""
    received: queue.Queue = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put((self.path, self.headers["Content-Type"], json.loads(body)))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_port}/hooks/T000/B000/secret"
    server.received = received
    yield server
    server.shutdown()
    server.server_close()


def test_request_decision_and_execution_are_posted(
    cast, stop_target, chat, settings, django_capture_on_commit_callbacks
):
    settings.ECSPORTAL_APPROVAL_WEBHOOK_URL = chat.url
    settings.ECSPORTAL_BASE_URL = "https://portal.example.com"
    with django_capture_on_commit_callbacks(execute=True):
        request = stop_request(actor=cast.operator, target=stop_target(cast.operator), reason="memory leak")
    path, content_type, body = chat.received.get(timeout=10)
    assert path == "/hooks/T000/B000/secret"
    assert content_type == "application/json"
    assert body["event"] == "approval.requested"
    assert body["text"].startswith(f"ecsportal #{request.pk}: operator asks to stop task ")
    assert "memory leak" in body["text"]
    assert body["text"].endswith(f"https://portal.example.com/approvals/{request.pk}/")
    assert body["request"]["requester"] == "operator"
    assert body["request"]["approvals_required"] == 1

    with django_capture_on_commit_callbacks(execute=True):
        services.approval_decide(actor=cast.approver, request_pk=request.pk, decision="approve", comment="go")
    events = {}
    for _ in range(2):
        _, _, body = chat.received.get(timeout=10)
        events[body["event"]] = body
    assert set(events) == {"approval.approve", "approval.executed"}
    assert "approver approved" in events["approval.approve"]["text"]
    assert events["approval.approve"]["comment"] == "go"
    assert events["approval.executed"]["request"]["status"] == "executed"
    assert events["approval.executed"]["text"].startswith(f"ecsportal #{request.pk}: Done: stop task")


def test_break_glass_is_announced(cast, stop_target, chat, settings, django_capture_on_commit_callbacks):
    settings.ECSPORTAL_APPROVAL_WEBHOOK_URL = chat.url
    with django_capture_on_commit_callbacks(execute=True):
        stop_request(
            actor=cast.admin, target=stop_target(cast.admin), reason="x", break_glass=True, break_glass_reason="outage"
        )
    bodies = [chat.received.get(timeout=10)[2] for _ in range(2)]
    glass = next(b for b in bodies if b["event"] == "approval.break_glass")
    assert "BREAK-GLASS" in glass["text"] and "outage" in glass["text"]
    assert glass["request"]["break_glass"] is True


def test_an_unreachable_webhook_is_logged_and_changes_nothing(cast, stop_target, caplog):
    url = f"http://127.0.0.1:{free_port()}/hooks/T000/B000/secret"  # nothing listens there
    caplog.set_level(logging.WARNING, logger="ecsportal.approvals.notify")
    notify.webhook_post(url, {"text": "hello"})
    assert "approval webhook to 127.0.0.1" in caplog.text
    assert "secret" not in caplog.text  # the URL's path is the webhook's secret


def test_a_malformed_webhook_url_is_logged_without_its_secret(caplog):
    from ecsportal.approvals.notify import webhook_post

    with caplog.at_level("DEBUG"):
        webhook_post("hooks.example.com/services/T000/B000/SECRETPART", {"text": "hi"})
    assert "SECRETPART" not in caplog.text
    assert "failed" in caplog.text


def test_error_reports_hide_webhook_and_connection_urls(settings):
    from django.views.debug import get_default_exception_reporter_filter

    settings.ECSPORTAL_APPROVAL_WEBHOOK_URL = "https://hooks.example.com/services/T/B/SECRETPART"
    settings.REDIS_URL = "redis://:hunter2@redis.internal:6379/0"
    shown = get_default_exception_reporter_filter().get_safe_settings()
    assert "SECRETPART" not in str(shown["ECSPORTAL_APPROVAL_WEBHOOK_URL"])
    assert "hunter2" not in str(shown["REDIS_URL"])
