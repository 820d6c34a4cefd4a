"""Who may open (and type into) a shell on a container, and on what terms.

The one question the shell runtime (`runs/interactive.py`, `runs/sessions.py`) asks, when a
shell opens and whenever its owner (re)attaches the keyboard. This minimal policy allows
operators and up, unmoderated, without recording input; the account policies and access
requests replace it behind the same signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser

from ecsportal.accounts.models import Role
from ecsportal.accounts.selectors import account_role_for_user

DEFAULT_SHELL = "/bin/sh"


@dataclass(frozen=True)
class ShellPermit:
    allowed: bool
    reason: str  # why not, in words ("" when allowed)
    request_url: str | None  # where to ask for access, when that is possible
    moderated: bool  # input only while an approver other than the owner watches
    record_input: bool  # keep the typed bytes in the recording
    shell_command: str
    expires_at: datetime | None  # the grant's end: the session ends then, "access expired"


def shell_permit(
    user: AbstractBaseUser, account: Any, *, cluster: str, service: str, task_arn: str, container: str
) -> ShellPermit:
    role = account_role_for_user(user=user, account=account)
    if role is None or role < Role.OPERATOR:
        return ShellPermit(
            allowed=False,
            reason=f"Shells on {account.name} need the operator role; ask an admin of the account.",
            request_url=None,
            moderated=False,
            record_input=False,
            shell_command=DEFAULT_SHELL,
            expires_at=None,
        )
    return ShellPermit(
        allowed=True,
        reason="",
        request_url=None,
        moderated=False,
        record_input=False,
        shell_command=DEFAULT_SHELL,
        expires_at=None,
    )
