"""The portal side of the demo: users, accounts and memberships. Idempotent."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from ecsportal.accounts.models import AwsAccount, CredentialSource, Membership, Role
from ecsportal.demo import localaws

DEMO_USERS = {
    "admin": None,  # superuser: admin everywhere
    "operator": Role.OPERATOR,
    "approver": Role.APPROVER,
    "approver2": Role.APPROVER,
    "viewer": Role.VIEWER,
}


@transaction.atomic
def seed_portal(*, password: str) -> dict[str, AwsAccount]:
    prod, _ = AwsAccount.objects.update_or_create(
        name="Acme Production",
        defaults={
            "account_id": localaws.ACCOUNT_A,
            "regions": ["eu-west-1", "us-east-1"],
            "credential_source": CredentialSource.DEFAULT_CHAIN,
            "is_production": True,
            "is_enabled": True,
        },
    )
    staging, _ = AwsAccount.objects.update_or_create(
        name="Acme Staging",
        defaults={
            "account_id": localaws.ACCOUNT_B,
            "regions": ["eu-west-1", "eu-central-1"],
            "credential_source": CredentialSource.DEFAULT_CHAIN,
            "role_arn": localaws.ROLE_B,
            "external_id": localaws.EXTERNAL_ID_B,
            "session_name": "ecsportal-demo",
            "allowed_role_arns": [localaws.ROLE_B_READONLY],
            "is_enabled": True,
        },
    )
    user_model = get_user_model()
    for username, role in DEMO_USERS.items():
        user, _ = user_model.objects.get_or_create(username=username)
        user.is_superuser = user.is_staff = role is None
        user.is_active = True
        user.set_password(password)
        user.save()
        if role is not None:
            for account in (prod, staging):
                Membership.objects.update_or_create(user=user, account=account, defaults={"role": role})
    seed_runbooks(accounts=[prod, staging])
    return {"prod": prod, "staging": staging}


DEMO_RUNBOOKS: list[dict] = [
    {
        "name": "Show environment (no secrets)",
        "description": "The container's environment variables, sorted, without any whose name mentions a secret, "
        "token, password, key or credential.",
        "command_template": "env | grep -v -i -E 'secret|token|passw|key|credential' | sort",
        "options": [],
    },
    {
        "name": "Tail a log file",
        "description": "The last lines of a log file under /var/log, /tmp or /app/logs.",
        "command_template": "tail -n {lines} -- {path}",
        "options": [
            dict(
                name="path",
                label="Log file",
                help_text="An absolute path under /var/log, /tmp or /app/logs, e.g. /var/log/dpkg.log.",
                default="/var/log/dpkg.log",
                pattern=r"(?!.*\.\.)(/var/log|/tmp|/app/logs)/[A-Za-z0-9._/-]+",
            ),
            dict(name="lines", label="Lines", kind="integer", default="50", min_value=1, max_value=5000),
        ],
    },
    {
        "name": "Look up a host",
        "description": "Resolve a dependency's name from inside the container, as the app would (getent, no ping needed).",
        "command_template": "getent ahosts {host}",
        "options": [
            dict(
                name="host",
                label="Host",
                kind="choice",
                choices=["localhost", "db.internal", "cache.internal", "api.example.com"],
                default="localhost",
            )
        ],
    },
    {
        "name": "Fingerprint a token",
        "description": "Prints the SHA-256 of a token, to compare with the one in the vault without showing either.",
        "command_template": "printf %s {token} | sha256sum",
        "options": [
            dict(name="token", label="Token", secret=True, help_text="Masked everywhere; never stored in clear."),
        ],
    },
    {
        "name": "Disk usage of a directory",
        "description": "du over a directory: heavy I/O on a busy task, so an approver agrees first.",
        "command_template": "du -sh {summary} -- {dir}",
        "needs_approval": True,
        "container_pattern": "app, api, worker",
        "options": [
            dict(
                name="dir",
                label="Directory",
                kind="choice",
                choices=["/var/log", "/var/cache", "/app"],
                default="/var/log",
            ),
            dict(
                name="summary", label="One total only", kind="boolean", flag="-c", help_text="Adds -c (a grand total)."
            ),
        ],
    },
]


def seed_runbooks(*, accounts: list[AwsAccount]) -> None:
    """The demo's runbooks on both accounts (kept as the seed says; admins' edits are undone)."""
    from ecsportal.runbooks.models import Runbook, RunbookOption

    for spec in DEMO_RUNBOOKS:
        fields = {k: v for k, v in spec.items() if k not in ("name", "options")}
        runbook, _ = Runbook.objects.update_or_create(name=spec["name"], defaults=fields)
        runbook.accounts.set(accounts)
        runbook.options.all().delete()
        for position, option in enumerate(spec["options"]):
            RunbookOption.objects.create(runbook=runbook, position=position, **option)
