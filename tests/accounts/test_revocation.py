"""Live sockets lose their access while open: the portal's own consumers through the full ASGI
application (ecsportal.asgi), on the in-memory layer (the worker-mode case over Redis is in
tests/test_multiprocess_revocation.py).

Each test opens real sockets with a browser's session cookie, changes something about the
user's access the way the portal or an operator would, and waits for the close: 4003 with the
reason "access revoked", only for the socket whose gate no longer passes.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session
from django.utils import timezone

from ecsportal.accounts.models import Membership, Role
from ecsportal.accounts.revocation import socket_access_revoked
from ecsportal.accounts.sockets import ACCESS_REVOKED_REASON, CLOSE_ACCESS_REVOKED
from ecsportal.asgi import application
from ecsportal.runs.models import RunStatus
from tests.cookies import logged_in
from tests.runs.lab import stored_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

REVOKED = {"type": "websocket.close", "code": CLOSE_ACCESS_REVOKED, "reason": ACCESS_REVOKED_REASON}


@pytest.fixture
def fast_sweep(settings):
    settings.ECSPORTAL_SOCKET_RECHECK_SECONDS = 0.3


async def _open(path: str, cookie: str) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie.encode())]
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    assert connected, (path, code)
    return communicator


async def _closed(communicator: WebsocketCommunicator, timeout: float = 10) -> dict:
    """Read past whatever the socket sends (a run's status and output) until it closes."""
    while True:
        message = await communicator.receive_output(timeout=timeout)
        if message["type"] == "websocket.close":
            return message


async def _stays_open(communicator: WebsocketCommunicator, seconds: float = 1.5) -> None:
    deadline = timezone.now() + timedelta(seconds=seconds)
    while timezone.now() < deadline:
        if await communicator.receive_nothing(timeout=0.3):
            continue
        assert (await communicator.receive_output())["type"] == "websocket.send"  # never a close


def _remove(user, account) -> None:
    """As the account page does it (accounts.services.membership_remove → Membership.delete)."""
    Membership.objects.get(user=user, account=account).delete()


async def _run_sockets(cast, *users):
    run = await database_sync_to_async(stored_run)(
        account=cast.prod, requested_by=cast.operator, status=RunStatus.SUCCEEDED, ended_at=timezone.now()
    )
    clients, sockets = [], []
    for user in users:
        client, cookie = await database_sync_to_async(logged_in)(user)
        clients.append(client)
        sockets.append(await _open(f"/ws/runs/{run.pk}/", cookie))
    return run, clients, sockets


async def test_a_removed_membership_closes_that_users_run_socket_and_no_one_elses(cast):
    _, _, (viewer, operator) = await _run_sockets(cast, cast.viewer, cast.operator)

    await database_sync_to_async(_remove)(cast.viewer, cast.prod)

    assert await _closed(viewer) == REVOKED
    await _stays_open(operator)
    await operator.disconnect()


async def test_a_membership_on_another_account_removed_keeps_the_socket(cast):
    _, _, (viewer,) = await _run_sockets(cast, cast.viewer)
    await database_sync_to_async(Membership.objects.filter(user=cast.viewer, account=cast.staging).delete)()
    await _stays_open(viewer)
    await viewer.disconnect()


async def test_a_role_lowered_below_what_the_inbox_needs_closes_it(cast):
    _, cookie = await database_sync_to_async(logged_in)(cast.approver)
    inbox = await _open("/ws/approvals/inbox/", cookie)

    def lower(account):
        membership = Membership.objects.get(user=cast.approver, account=account)
        membership.role = Role.OPERATOR
        membership.save()

    await database_sync_to_async(lower)(cast.prod)
    await _stays_open(inbox)  # still an approver on staging: the inbox still has something to say
    await database_sync_to_async(lower)(cast.staging)
    assert await _closed(inbox) == REVOKED


async def test_a_deactivated_user_loses_every_socket(cast):
    _, clients, (run_socket,) = await _run_sockets(cast, cast.approver)
    _, cookie = await database_sync_to_async(logged_in)(cast.approver)
    inbox = await _open("/ws/approvals/inbox/", cookie)

    def deactivate():
        cast.approver.is_active = False
        cast.approver.save()

    await database_sync_to_async(deactivate)()
    assert await _closed(run_socket) == REVOKED
    assert await _closed(inbox) == REVOKED


async def test_a_bulk_update_the_signals_miss_is_caught_by_the_sweep(cast, fast_sweep):
    _, _, (viewer,) = await _run_sockets(cast, cast.viewer)
    # QuerySet.delete() of memberships sends signals, update() does not: the backstop must see it.
    await database_sync_to_async(Membership.objects.filter(user=cast.viewer, account=cast.prod).update)(
        account=cast.other
    )  # moved to an account the run is not on, without any signal
    assert await _closed(viewer) == REVOKED


async def test_the_sweep_leaves_a_socket_alone_while_its_users_access_is_unchanged(cast, fast_sweep, monkeypatch):
    """A new socket starts from the fingerprint it read before its gate: sweeps after it do not
    run its gate again (once they ran every new socket's, a burst after a reconnect storm)."""
    from ecsportal.accounts.sockets import PortalConsumer

    rechecks = []
    checked = PortalConsumer.recheck_access

    async def counted(self):
        rechecks.append(self.scope["path"])
        await checked(self)

    monkeypatch.setattr(PortalConsumer, "recheck_access", counted)
    _, _, sockets = await _run_sockets(cast, cast.viewer, cast.operator)
    for socket in sockets:
        await _stays_open(socket, seconds=1.5)  # five sweeps
    assert rechecks == []
    # A change the signals miss is still caught from that fingerprint (as in the test above).
    await database_sync_to_async(Membership.objects.filter(user=cast.viewer, account=cast.prod).update)(
        account=cast.other
    )
    assert await _closed(sockets[0]) == REVOKED
    assert len(rechecks) == 1


async def test_an_expired_login_session_closes_the_socket(cast, fast_sweep):
    _, _, (viewer, operator) = await _run_sockets(cast, cast.viewer, cast.operator)

    def expire(user):
        for session in Session.objects.all():
            if session.get_decoded().get("_auth_user_id") == str(user.pk):
                Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))

    await database_sync_to_async(expire)(cast.viewer)
    assert await _closed(viewer) == REVOKED
    await _stays_open(operator)
    await operator.disconnect()


async def test_a_password_change_elsewhere_closes_sockets_of_the_old_session(cast, fast_sweep):
    _, _, (viewer,) = await _run_sockets(cast, cast.viewer)

    def change_password():
        # As the admin's password form does: the session hash no longer matches.
        type(cast.viewer).objects.filter(pk=cast.viewer.pk).update(password="pbkdf2_sha256$1$x$y")

    await database_sync_to_async(change_password)()
    assert await _closed(viewer) == REVOKED


async def test_the_revocation_signal_names_the_user_and_the_account(cast):
    heard = []

    async def receiver(sender, **kwargs):
        heard.append((kwargs["user_pk"], kwargs["account_pk"], kwargs["reason"]))

    socket_access_revoked.connect(receiver)
    try:
        _, _, (viewer,) = await _run_sockets(cast, cast.viewer)
        await database_sync_to_async(_remove)(cast.viewer, cast.prod)
        assert await _closed(viewer) == REVOKED
    finally:
        socket_access_revoked.disconnect(receiver)
    assert len(heard) == 1
    user_pk, _, reason = heard[0]
    assert user_pk == cast.viewer.pk
    assert "gate" in reason


async def test_logging_out_tells_the_hook_and_closes_with_4001(cast):
    from ecsportal.accounts.sockets import CLOSE_LOGGED_OUT

    heard = []

    async def receiver(sender, **kwargs):
        heard.append((kwargs["user_pk"], kwargs["reason"]))

    socket_access_revoked.connect(receiver)
    try:
        _, (client,), (viewer,) = await _run_sockets(cast, cast.viewer)
        assert (await database_sync_to_async(client.post)("/logout/")).status_code == 302
        closed = await _closed(viewer)
    finally:
        socket_access_revoked.disconnect(receiver)
    assert closed == {"type": "websocket.close", "code": CLOSE_LOGGED_OUT}
    assert heard == [(cast.viewer.pk, "the user logged out")]


async def test_a_socket_that_still_passes_follows_its_groups(cast):
    """The approver lowered on staging only: the inbox stays open, hears prod, no longer staging."""
    from channels.layers import get_channel_layer

    from ecsportal.approvals.notify import approvers_group

    _, cookie = await database_sync_to_async(logged_in)(cast.approver)
    inbox = await _open("/ws/approvals/inbox/", cookie)

    def lower_on_staging():
        membership = Membership.objects.get(user=cast.approver, account=cast.staging)
        membership.role = Role.OPERATOR
        membership.save()

    await database_sync_to_async(lower_on_staging)()
    await _stays_open(inbox)
    layer = get_channel_layer()
    await layer.group_send(approvers_group(cast.staging.pk), {"type": "approval.changed", "pk": 1})
    assert await inbox.receive_nothing(timeout=1)
    await layer.group_send(approvers_group(cast.prod.pk), {"type": "approval.changed", "pk": 2})
    assert await inbox.receive_json_from(timeout=5) == {"changed": "inbox", "pk": 2}
    await inbox.disconnect()
