"""Interactive shells: a run whose terminal accepts input, keeping every property of a run.

    browser ─▶ SessionConsumer (sessions.py, ws/sessions/<pk>/) ─▶ "may this user type now?"
      ─▶ channel layer, group "shell-<pk>" ─▶ ShellInput, beside the runner that owns the SSM
      session ─▶ input_stream_data (PayloadType 1 keys, 3 size)

Output goes exactly as a run's (TranscriptWriter → stream, store → group "run-<pk>"). The
runner is the only writer to the data channel; input reaches it through the channel layer in
both runner modes (in process, or a runs worker over Redis). Who is in a session, who holds
the keyboard and whether input is paused goes to group "session-<pk>" as `session.state`.

This module holds the services (open, end, keyboard), the session's state, and the runner's
input side (`ShellInput`); the socket is `sessions.SessionConsumer`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from ecsportal.accounts.models import SHELL_COMMAND_AUTO, Role
from ecsportal.accounts.selectors import account_role_for_user
from ecsportal.audit.services import audit_record
from ecsportal.runs import dispatcher, loops
from ecsportal.runs.lifecycle import BEFORE_START, run_end
from ecsportal.runs.lifecycle import run_label as _label
from ecsportal.runs.models import ACTIVE_STATUSES, AUTO_SHELL, Run, RunMode, RunStatus, SessionSeat
from ecsportal.runs.selectors import live_seats, run_get_for_user, seat_lease_seconds
from ecsportal.runs.services import RunRefused, run_container_check, run_create, run_target, run_where
from ecsportal.runs.shellinput import shell_group
from ecsportal.shells.policy import ShellPermit, shell_grant_use, shell_permit

logger = logging.getLogger(__name__)

ACCESS_REVOKED = "Access revoked"
ACCESS_END_GRACE = 30  # seconds past a grant's end before the time limit, the backstop, applies


def resolve_shell_command(setting: str) -> str:
    """The account's shell command as the container runs it ("auto": bash if there, else sh)."""
    setting = (setting or "").strip()
    return AUTO_SHELL if setting in ("", SHELL_COMMAND_AUTO) else setting


def _service_of(group: str) -> str:
    return group.split(":", 1)[1] if group.startswith("service:") else ""


def permit_for_run(*, user: AbstractBaseUser, run: Run) -> ShellPermit:
    """The account's answer for this user on this session's container (asked on open and on
    every attach of the owner's keyboard)."""
    return shell_permit(
        user,
        run.account,
        cluster=run.cluster,
        service=run.shell_service,
        task_arn=run.task_arn,
        container=run.container,
    )


# -- services ----------------------------------------------------------------------------------


def shell_open(
    *,
    actor: AbstractBaseUser,
    account_pk: int,
    region: str,
    cluster: str,
    task: str,
    container: str,
    role_arn: str = "",
    cols: int = 120,
    rows: int = 32,
    source_ip: str | None = None,
) -> Run:
    """Open an interactive shell on a running task's container: a run (mode raw, interactive)
    whose keyboard its owner holds. Raises Http404 (not the user's account) or RunRefused."""
    cluster, task, container, role_arn = cluster.strip(), task.strip(), container.strip(), (role_arn or "").strip()
    account, target = run_target(
        actor=actor, account_pk=account_pk, region=region, cluster=cluster, task=task, role_arn=role_arn
    )
    run_container_check(target, container)
    service = _service_of(target.group)
    permit = shell_permit(actor, account, cluster=cluster, service=service, task_arn=target.arn, container=container)
    if not permit.allowed:
        where = f" Ask for access: {permit.request_url}" if permit.request_url else ""
        raise RunRefused(f"{permit.reason}{where}")
    # The account's terms, never past the deployment's ceilings.
    limit = min(int(settings.ECSPORTAL_SHELL_MAX_SECONDS), int(account.shell_max_minutes) * 60)
    idle = min(float(settings.ECSPORTAL_SHELL_IDLE_SECONDS), float(account.shell_idle_minutes) * 60)
    if permit.expires_at is not None:
        left = int((permit.expires_at - timezone.now()).total_seconds())
        if left <= 0:
            raise RunRefused("Your access to shells on this container has expired; ask for it again.")
        # The runner ends the session "access expired" at the grant's end; the time limit is
        # only the backstop, a little later.
        limit = min(limit, left + ACCESS_END_GRACE)
    command = resolve_shell_command(permit.shell_command)
    with transaction.atomic():
        run = run_create(
            account=account,
            region=region,
            cluster=cluster,
            target=target,
            container=container,
            command=command,
            mode=RunMode.RAW,
            role_arn=role_arn,
            actor=actor,
            cols=cols,
            rows=rows,
            status=RunStatus.QUEUED,
            time_limit_seconds=limit,
            interactive=True,
            keyboard_holder=actor,
            moderated=permit.moderated,
            record_input=permit.record_input,
            shell_service=service,
            shell_idle_seconds=max(1, int(idle)) if idle > 0 else 0,
            access_expires_at=permit.expires_at,
        )
        shell_grant_use(actor, permit, account=account, target=_label(run), source_ip=source_ip)
        audit_record(
            actor=actor,
            action="shell.opened",
            target=_label(run),
            account=account,
            details={
                **run_where(run),
                "command": command,
                "moderated": permit.moderated,
                "record_input": permit.record_input,
                "time_limit_seconds": limit,
            },
            source_ip=source_ip,
        )
        pk = run.pk
        transaction.on_commit(lambda: dispatcher.dispatch(pk))
    return run


def shell_end(
    *, run_pk: int, reason: str, actor: AbstractBaseUser | None = None, status: str = RunStatus.COMPLETED
) -> bool:
    """End an interactive session with a reason in words. Before it started: at once; while it
    runs: the runner that owns it closes the session (in whichever process). True when asked."""
    run = Run.objects.filter(pk=run_pk, interactive=True).select_related("account").first()
    if run is None or run.status not in ACTIVE_STATUSES:
        return False
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="shell.end_requested",
            target=_label(run),
            account=run.account,
            details={"run": run.pk, "reason": reason},
        )
        ended = run.status in BEFORE_START and run_end(
            run_pk=run.pk, status=status, end_reason=reason, from_statuses=BEFORE_START
        )
    if not ended:
        loops.group_send_from_sync(shell_group(run.pk), {"type": "shell.end", "status": status, "reason": reason})
    return True


def shell_end_by_owner(*, actor: AbstractBaseUser, run_pk: int) -> Run:
    """The End button: the owner (or an operator of the account, as a cancel) ends the session."""
    run = run_get_for_user(user=actor, run_pk=run_pk, min_role=Role.OPERATOR)
    if not run.interactive:
        raise RunRefused("This run is not a shell.")
    if run.status not in ACTIVE_STATUSES:
        raise RunRefused(f"This shell has already ended ({run.get_status_display().lower()}).")
    shell_end(run_pk=run.pk, reason=f"Ended by {actor.get_username()}.", actor=actor)
    return run


def shell_end_for_user(*, user_pk: int, reason: str = ACCESS_REVOKED) -> list[int]:
    """End every live shell the user owns, saying why (revocation: a membership removed or
    lowered, a deactivated user). Returns the runs asked to end."""
    pks = list(
        Run.objects.filter(interactive=True, requested_by_id=user_pk, status__in=ACTIVE_STATUSES).values_list(
            "pk", flat=True
        )
    )
    wording = reason if reason.endswith(".") else f"{reason}."
    return [pk for pk in pks if shell_end(run_pk=pk, reason=wording, status=RunStatus.ERROR)]


def keyboard_hand(*, actor: AbstractBaseUser, run_pk: int, to_username: str | None) -> Run:
    """The owner hands the keyboard to a participant who is an operator on the account, or
    (None) takes it back. Audited; everyone in the session is told."""
    run = Run.objects.select_related("account", "requested_by").get(pk=run_pk)
    if run.requested_by_id != actor.pk:
        raise RunRefused(f"Only {run.requested_by.get_username()}, who opened this shell, can hand its keyboard.")
    if run.status not in ACTIVE_STATUSES:
        raise RunRefused("This shell has ended.")
    if to_username is None or to_username == actor.get_username():
        holder = actor
    else:
        holder = get_user_model().objects.filter(username=to_username, is_active=True).first()
        if holder is None or not live_seats().filter(run=run, user=holder).exists():
            raise RunRefused(f"{to_username} is not in this session; the keyboard goes only to someone watching.")
        role = account_role_for_user(user=holder, account=run.account)
        if role is None or role < Role.OPERATOR:
            raise RunRefused(f"{to_username} is not an operator on {run.account.name}, so cannot type here.")
    with transaction.atomic():
        Run.objects.filter(pk=run.pk).update(keyboard_holder=holder)
        audit_record(
            actor=actor,
            action="shell.keyboard_handed",
            target=_label(run),
            account=run.account,
            details={"run": run.pk, "to": holder.get_username()},
        )
    run.keyboard_holder = holder
    return run


# -- who is in a session -----------------------------------------------------------------------
#
# A seat is one socket of one person, as a row every process sees. Its process renews it
# (`seats_renew`, every third of the lease); a process killed without a goodbye (SIGKILL, the
# OOM killer) leaves seats nobody renews: past the lease they count for nobody (the moderation
# check, the lists of who is in a shell) and any live process sweeps them (`seats_sweep`).


def seat_take(*, run: Run, user: AbstractBaseUser, channel_name: str) -> None:
    """A socket joined; the person's first socket in the session is audited as joining."""
    with transaction.atomic():
        first = not live_seats().filter(run=run, user=user).exists()
        SessionSeat.objects.update_or_create(
            channel_name=channel_name, defaults={"run": run, "user": user, "seen_at": timezone.now()}
        )
        if first:
            audit_record(
                actor=user, action="shell.joined", target=_label(run), account=run.account, details={"run": run.pk}
            )


def _audit_left(seat: SessionSeat, **details: Any) -> None:
    if not live_seats().filter(run_id=seat.run_id, user_id=seat.user_id).exists():
        audit_record(
            actor=seat.user,
            action="shell.left",
            target=_label(seat.run),
            account=seat.run.account,
            details={"run": seat.run_id, **details},
        )


def seat_leave(*, channel_name: str) -> int | None:
    """A socket left; the person's last socket leaving is audited. The run's pk, if it was seated."""
    seat = SessionSeat.objects.select_related("run__account", "user").filter(channel_name=channel_name).first()
    if seat is None:
        return None
    with transaction.atomic():
        seat.delete()
        _audit_left(seat)
    return seat.run_id


def seats_renew(channel_names: list[str]) -> set[str]:
    """Renew the leases of one process's seats; the channel names that had no seat any more
    (swept while the process was stalled past the lease: the caller takes them again)."""
    if not channel_names:
        return set()
    renewed = SessionSeat.objects.filter(channel_name__in=channel_names).update(seen_at=timezone.now())
    if renewed == len(channel_names):
        return set()
    present = set(SessionSeat.objects.filter(channel_name__in=channel_names).values_list("channel_name", flat=True))
    return set(channel_names) - present


def seats_sweep() -> set[int]:
    """Remove seats whose lease ran out (their process died), in whichever process notices first;
    a person with no live seat left is audited as having left. The runs whose state changed."""
    cutoff = timezone.now() - timedelta(seconds=seat_lease_seconds())
    with transaction.atomic():
        expired = list(
            SessionSeat.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(seen_at__lt=cutoff)
            .select_related("run__account", "user")
        )
        if not expired:
            return set()
        SessionSeat.objects.filter(pk__in=[seat.pk for seat in expired]).delete()
        seen: set[tuple[int, int]] = set()
        for seat in expired:
            if (seat.run_id, seat.user_id) not in seen:
                seen.add((seat.run_id, seat.user_id))
                _audit_left(seat, lost=True)
    return {seat.run_id for seat in expired}


def session_state(run_pk: int) -> dict[str, Any]:
    """What every page in the session shows: who is in it, who holds the keyboard, whether input
    is paused and why. The sockets gate input on it too (never on what the page says)."""
    run = Run.objects.select_related("account", "requested_by", "keyboard_holder").get(pk=run_pk)
    seats = live_seats().filter(run=run).select_related("user").order_by("joined_at", "id")
    people: dict[int, dict[str, Any]] = {}
    for seat in seats:
        if seat.user_id in people:
            continue
        role = account_role_for_user(user=seat.user, account=run.account)
        people[seat.user_id] = {
            "username": seat.user.get_username(),
            "role": role.label if role is not None else "",
            "owner": seat.user_id == run.requested_by_id,
            "may_type": role is not None and role >= Role.OPERATOR,
            "approver": role is not None and role >= Role.APPROVER,
        }
    paused = ""
    if run.moderated and not any(p["approver"] and not p["owner"] for p in people.values()):
        paused = "Input is paused: this shell is moderated, and no approver other than its owner is watching."
    holder = run.keyboard_holder
    return {
        "type": "session",
        "owner": run.requested_by.get_username(),
        "owner_id": run.requested_by_id,
        "holder": holder.get_username() if holder else "",
        "holder_id": holder.pk if holder else None,
        "people": list(people.values()),
        "paused": paused,
        "active": run.status in ACTIVE_STATUSES,
        "moderated": run.moderated,
    }
