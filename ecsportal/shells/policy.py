"""Who may open a shell on a container, now: the contract between the shell runtime and access.

`shell_permit(user, account, *, cluster, service, task_arn, container)` answers with a
`ShellPermit`. The runtime calls it before it opens a session (and may call it again while the
session runs: a grant's end is `expires_at`); it never decides on its own. Its order:

1. the accounts gate: a member with at least the operator role on an enabled account;
2. the account's shell policy (`AwsAccount.effective_shell_access`): off → no; allowed for
   operators → yes; access request → yes only under a grant in force that covers this container
   (`ShellGrant`, left by an approved "Shell access" request), else no, with `request_url`, the
   request form prefilled for this container.

`moderated`, `record_input` and `shell_command` are the account's settings ("auto": bash when
the image has it, else sh — the runtime resolves it). `shell_grant_use` records "access used"
(`shell.access_used`) the first time and every time a grant opens a shell.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from ecsportal.accounts.models import AwsAccount, Role, ShellAccess
from ecsportal.accounts.selectors import account_role_for_user
from ecsportal.approvals import policy as approval_policy
from ecsportal.audit.services import audit_record
from ecsportal.shells.models import ShellGrant
from ecsportal.shells.selectors import cluster_name, grant_for_target, region_of_task_arn, request_url


@dataclass(frozen=True)
class ShellPermit:
    allowed: bool
    reason: str  # why not, in words, and what to do ("" when allowed)
    request_url: str | None  # the access request form for this container, prefilled (None: asking would not help)
    moderated: bool
    record_input: bool
    shell_command: str  # "auto" or a literal command
    expires_at: datetime | None  # the grant's end, or None (no grant needed)
    grant_pk: int | None = None  # the grant that allows it (for shell_grant_use)


def _refused(account: AwsAccount, reason: str, url: str | None = None) -> ShellPermit:
    return ShellPermit(
        allowed=False,
        reason=reason,
        request_url=url,
        moderated=account.shell_moderated,
        record_input=account.shell_record_input,
        shell_command=account.shell_command,
        expires_at=None,
    )


def shell_permit(
    user: AbstractBaseUser, account: AwsAccount, *, cluster: str, service: str, task_arn: str, container: str
) -> ShellPermit:
    role = account_role_for_user(user=user, account=account)
    if role is None:
        return _refused(account, "You are not a member of this account.")
    if not account.is_enabled:
        return _refused(account, f"{account.name} is disabled; an admin can enable it again.")
    if role < Role.OPERATOR:
        return _refused(
            account,
            f"Opening a shell needs the operator role on {account.name}; you are {role.label.lower()}. "
            "Ask one of the account's admins.",
        )
    mode = account.effective_shell_access
    if mode == ShellAccess.OFF:
        return _refused(
            account, f"Shells are turned off on {account.name}; an account admin can allow them in its settings."
        )
    if mode == ShellAccess.OPERATORS:
        return ShellPermit(
            allowed=True,
            reason="",
            request_url=None,
            moderated=account.shell_moderated,
            record_input=account.shell_record_input,
            shell_command=account.shell_command,
            expires_at=None,
        )
    grant = grant_for_target(
        user=user, account=account, cluster=cluster, service=service, task_arn=task_arn, container=container
    )
    if grant is None:
        needed = approval_policy.approvals_required(account=account, policy=approval_policy.Policy.SHELL)
        url = request_url(
            account_pk=account.pk,
            region=region_of_task_arn(task_arn),
            cluster=cluster_name(cluster),
            task_id=task_arn.rsplit("/", 1)[-1],
            container=container,
        )
        approvals = f"{needed} approval{'s' if needed != 1 else ''}" if needed else "no approval"
        return _refused(
            account,
            f"Shells on {account.name} need an approved access request: ask for this container "
            f"(or its service) for a number of minutes, with a reason; it needs {approvals}.",
            url,
        )
    return ShellPermit(
        allowed=True,
        reason="",
        request_url=None,
        moderated=account.shell_moderated,
        record_input=account.shell_record_input,
        shell_command=account.shell_command,
        expires_at=grant.expires_at,
        grant_pk=grant.pk,
    )


@transaction.atomic
def shell_grant_use(
    user: AbstractBaseUser, permit: ShellPermit, *, account: AwsAccount, target: str, source_ip: str | None = None
) -> None:
    """Record that a grant opened a shell ("access used"); nothing for a permit without a grant."""
    if not permit.allowed or permit.grant_pk is None:
        return
    grant = ShellGrant.objects.select_for_update().filter(pk=permit.grant_pk, user_id=user.pk).first()
    if grant is None:
        return
    first = grant.first_used_at is None
    if first:
        grant.first_used_at = timezone.now()
        grant.save(update_fields=["first_used_at"])
    audit_record(
        actor=user,
        action="shell.access_used",
        target=target,
        account=account,
        details={
            "grant": grant.pk,
            "request": grant.request_id,
            "first_use": first,
            "expires_at": grant.expires_at.isoformat(),
        },
        source_ip=source_ip,
    )
