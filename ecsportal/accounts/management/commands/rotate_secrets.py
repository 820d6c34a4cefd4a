"""`manage.py rotate_secrets [--dry-run]`: re-encrypt every stored secret under the newest key.

The procedure (README, Configuration): put a new key first in ECSPORTAL_SECRET_KEYS and restart,
run this command, then drop the old key and restart again.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from ecsportal.accounts.services import secrets_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret (account secret keys, sealed runbook commands) under the first key "
        "of ECSPORTAL_SECRET_KEYS. Safe to run again; refuses, touching nothing it cannot read, when a "
        "secret opens with no configured key."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count what would change; write nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = secrets_rotate(dry_run=options["dry_run"])
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        verb = "would be re-encrypted" if report.dry_run else "re-encrypted"
        self.stdout.write(
            f"{report.rotated} secret(s) {verb} under the first of {report.keys} key(s); "
            f"{report.current} already current; {len(report.unreadable)} unreadable."
        )
        if report.unreadable:
            names = "\n".join(f"  - {name}" for name in report.unreadable)
            raise CommandError(
                f"No key in ECSPORTAL_SECRET_KEYS opens these secrets; they were left exactly as stored:\n{names}\n"
                "Put the key they were encrypted with back into ECSPORTAL_SECRET_KEYS (after the new one) and "
                "run this command again, or enter those secrets again on the account's edit page. Do not drop "
                "any key until this command reports no unreadable secret."
            )
