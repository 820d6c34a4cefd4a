"""Logging out: a POST; a typed /logout/ asks first."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.runs.lab import stored_run


@pytest.mark.django_db
def test_a_typed_logout_url_asks_before_logging_out(client):
    user = get_user_model().objects.create_user("carol", password="pw-for-tests")
    client.force_login(user)
    page = client.get("/logout/")
    assert page.status_code == 200
    assert b'action="/logout/"' in page.content
    assert client.get("/").status_code == 200  # still logged in
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302  # now sent to the login page


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_logging_out_closes_every_live_socket_of_that_user_and_no_one_elses(cast):
    """The portal's own sockets (the approvals inbox, a run's output), not a test consumer: after
    the approver logs out, both of their sockets close with 4001; the viewer's stays open."""
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.utils import timezone

    from ecsportal.accounts.sockets import CLOSE_LOGGED_OUT
    from ecsportal.asgi import application
    from ecsportal.runs.models import RunStatus
    from tests.cookies import logged_in

    run = await database_sync_to_async(stored_run)(
        account=cast.prod, requested_by=cast.operator, status=RunStatus.SUCCEEDED, ended_at=timezone.now()
    )
    approver_client, approver_cookie = await database_sync_to_async(logged_in)(cast.approver)
    _, viewer_cookie = await database_sync_to_async(logged_in)(cast.viewer)

    async def open_socket(path: str, cookie: str) -> WebsocketCommunicator:
        headers = [(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie.encode())]
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await communicator.connect(timeout=5)
        assert connected, path
        return communicator

    inbox = await open_socket("/ws/approvals/inbox/", approver_cookie)
    approver_run = await open_socket(f"/ws/runs/{run.pk}/", approver_cookie)
    viewer_run = await open_socket(f"/ws/runs/{run.pk}/", viewer_cookie)

    async def drain_until_closed(communicator: WebsocketCommunicator) -> dict:
        while True:  # the run socket sends its status and stored output first
            message = await communicator.receive_output(timeout=5)
            if message["type"] == "websocket.close":
                return message

    assert (await database_sync_to_async(approver_client.post)("/logout/")).status_code == 302
    for communicator in (inbox, approver_run):
        assert await drain_until_closed(communicator) == {"type": "websocket.close", "code": CLOSE_LOGGED_OUT}
    while not await viewer_run.receive_nothing(timeout=0.5):
        assert (await viewer_run.receive_output())["type"] == "websocket.send"  # output, never a close
    await viewer_run.disconnect()
