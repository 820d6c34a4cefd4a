"""Cross-cutting defences: a strict CSP, WebSocket origin checks. Login everywhere, role by role,
is tests/test_authorisation_matrix.py."""

from __future__ import annotations

import re

import pytest
from channels.testing import WebsocketCommunicator

from ecsportal.asgi import application
from tests.conftest import ROOT


@pytest.mark.django_db
def test_login_page_and_pages_carry_a_strict_content_security_policy(client, cast, login):
    for answer in (client.get("/login/"), login(cast.viewer).get("/accounts/")):
        policy = answer["Content-Security-Policy"]
        assert "script-src 'self'" in policy
        assert "style-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert answer["X-Frame-Options"] == "DENY"


def test_no_template_has_inline_script_style_or_event_handlers():
    """The CSP would block them in the browser; catch them here, where the message is clearer."""
    offenders = []
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)[^>]*>", r"\sstyle=\"", r"<style\b", r"\son[a-z]+=\"", r"hx-on"):
            if re.search(pattern, text):
                offenders.append(f"{template.relative_to(ROOT)}: {pattern}")
    assert offenders == []


@pytest.mark.asyncio
@pytest.mark.django_db  # Channels' consumers close stale DB connections on every message
@pytest.mark.parametrize("origin", [b"http://evil.example", b"https://localhost.evil.example", None])
async def test_websocket_from_a_foreign_or_missing_origin_is_refused(origin):
    headers = [(b"origin", origin)] if origin else []
    communicator = WebsocketCommunicator(application, "/ws/anything/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected is False
    await communicator.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db
async def test_websocket_from_an_allowed_origin_passes_the_origin_check():
    """Past the origin validator the consumer decides: an anonymous socket gets its own close
    code (4401), not the validator's refusal."""
    communicator = WebsocketCommunicator(
        application, "/ws/approvals/inbox/", headers=[(b"origin", b"http://localhost")]
    )
    connected, code = await communicator.connect()
    assert connected is False and code == 4401
