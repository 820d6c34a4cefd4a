"""Revoking live sockets: the access gate re-checked while a socket stays open.

Two paths, both ending in `PortalConsumer.recheck_access()` (the socket's own `authorise()`,
the gate its HTTP view uses, run again with the user read afresh) or `revoke_access()`:

- **Broadcast** (immediate): a Membership saved or deleted, a User saved or deleted, sends
  `access.changed` to the group `user-<id>` after the transaction commits; every socket of that
  user, in every process when the channel layer is Redis, re-checks its gate and closes with
  4003 "access revoked" when it no longer passes.
- **Sweep** (the backstop, every `ECSPORTAL_SOCKET_RECHECK_SECONDS`): one task per event loop
  (per process) looks at all of its sockets in three queries whatever their number: the
  sessions (expired, deleted, or made for an older password: revoked), the users (gone or
  deactivated: revoked), and a fingerprint of each user's memberships and flags; a socket whose
  user's fingerprint changed since its last check (a bulk `update()`, a raw SQL change, a
  missed broadcast) re-checks its gate. A socket starts from the fingerprint it read just
  before its gate ran at connect (`fingerprint`), so a change made after that is still caught.

A database error during a check leaves the socket open (logged) and is tried again at the next
sweep: a PostgreSQL restart must not close every viewer with a false "access revoked".
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from ecsportal.accounts.models import Membership

if TYPE_CHECKING:
    from ecsportal.accounts.sockets import PortalConsumer

logger = logging.getLogger(__name__)

# Sent (awaited, `asend_robust`) by a socket whose access was revoked, just before it closes.
# Keyword arguments: user_pk (int), account_pk (int | None: the consumer's `account_pk`, when
# its socket is about one account), consumer (the PortalConsumer instance), reason (str).
# Receivers run in the consumer's event loop: async receivers, or quick sync ones.
socket_access_revoked = Signal()


def recheck_seconds() -> float:
    return max(0.2, float(getattr(settings, "ECSPORTAL_SOCKET_RECHECK_SECONDS", 3.0)))


# --- broadcast ---------------------------------------------------------------------------


def access_changed(user_pk: int) -> None:
    """Tell every socket of this user, in every process, to re-check its gate (after the commit)."""

    def send() -> None:
        from ecsportal.accounts.sockets import user_group

        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(user_group(user_pk), {"type": "access.changed"})
        except Exception as exc:  # Redis down, or called inside an event loop: the sweep catches it
            logger.warning("could not broadcast an access change for user %s (%s); the sweep will", user_pk, exc)

    transaction.on_commit(send)


def _membership_changed(sender: Any, instance: Membership, **kwargs: Any) -> None:
    access_changed(instance.user_id)


def _user_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # a login touches last_login: nothing about access changed
    if kwargs.get("created"):
        return
    access_changed(instance.pk)


def connect_signals() -> None:
    """Called from AccountsConfig.ready()."""
    post_save.connect(_membership_changed, sender=Membership, dispatch_uid="revocation-membership-save")
    post_delete.connect(_membership_changed, sender=Membership, dispatch_uid="revocation-membership-delete")
    user_model = get_user_model()
    post_save.connect(_user_changed, sender=user_model, dispatch_uid="revocation-user-save")
    post_delete.connect(_user_changed, sender=user_model, dispatch_uid="revocation-user-delete")


# --- sweep -------------------------------------------------------------------------------


def _fingerprints(users: dict[int, Any]) -> dict[int, tuple]:
    """user pk → what its sockets' gates depend on: its flags and its memberships' roles."""
    roles: dict[int, set[tuple[int, int]]] = {pk: set() for pk in users}
    for user_pk, account_pk, role in Membership.objects.filter(user_id__in=users).values_list(
        "user_id", "account_id", "role"
    ):
        roles[user_pk].add((account_pk, role))
    return {pk: (u.is_superuser, u.is_staff, frozenset(roles[pk])) for pk, u in users.items()}


def fingerprint(user_pk: int) -> tuple | None:
    """The user's fingerprint now (None when gone or deactivated). A socket reads it before its
    gate, so the sweep starts from what the gate saw: a change after this read shows as a
    different fingerprint at the next sweep, and one before it is seen by the gate itself.
    Without it every new socket was re-checked at its first sweep (two database calls each, a
    burst of them after a reconnect storm)."""
    users = {u.pk: u for u in get_user_model().objects.filter(pk=user_pk, is_active=True)}
    return _fingerprints(users).get(user_pk)


def _facts(user_pks: set[int], session_keys: set[str]) -> tuple[dict[int, tuple], set[str]]:
    """(user pk → fingerprint, for active users only; session keys that still log their user in)."""
    users = {u.pk: u for u in get_user_model().objects.filter(pk__in=user_pks, is_active=True)}
    fingerprints = _fingerprints(users)
    live: set[str] = set()
    for session in Session.objects.filter(session_key__in=session_keys, expire_date__gt=timezone.now()):
        data = session.get_decoded()
        try:
            user = users.get(int(data.get(SESSION_KEY, "")))
        except (TypeError, ValueError):
            continue
        if user is None or not data.get(BACKEND_SESSION_KEY):
            continue
        if constant_time_compare(data.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()):
            live.add(session.session_key)
    return fingerprints, live


class _Sweep:
    def __init__(self) -> None:
        self.consumers: set[PortalConsumer] = set()
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        while self.consumers:
            await asyncio.sleep(recheck_seconds())
            try:
                await self.once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("socket access sweep failed (%s); trying again in %s s", exc, recheck_seconds())

    async def once(self) -> None:
        consumers = [c for c in self.consumers if not c.access_revoked]
        if not consumers:
            return
        user_pks = {c.scope["user"].pk for c in consumers}
        keys = {k for c in consumers if (k := c.session_key())}
        fingerprints, live = await database_sync_to_async(_facts)(user_pks, keys)
        for consumer in consumers:
            if consumer not in self.consumers or consumer.access_revoked:
                continue
            user_pk = consumer.scope["user"].pk
            key = consumer.session_key()
            if user_pk not in fingerprints:
                await consumer.revoke_access("the user was deactivated or deleted")
            elif key and key not in live:
                await consumer.revoke_access("the login session ended")
            elif consumer.access_fingerprint != fingerprints[user_pk]:
                consumer.access_fingerprint = fingerprints[user_pk]
                await consumer.recheck_access()


_sweeps: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Sweep] = weakref.WeakKeyDictionary()


def sweep_join(consumer: PortalConsumer) -> None:
    loop = asyncio.get_running_loop()
    sweep = _sweeps.get(loop)
    if sweep is None:
        sweep = _sweeps[loop] = _Sweep()
    sweep.consumers.add(consumer)
    if sweep.task is None or sweep.task.done():
        sweep.task = loop.create_task(sweep.run(), name="socket-access-sweep")


def sweep_leave(consumer: PortalConsumer) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    sweep = _sweeps.get(loop)
    if sweep is None:
        return
    sweep.consumers.discard(consumer)
    if not sweep.consumers and sweep.task is not None:
        sweep.task.cancel()
        sweep.task = None
