"""`manage.py prune_stopped_tasks [--days N]`: forget history older than the retention."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ecsportal.stopped.services import stopped_prune


class Command(BaseCommand):
    help = "Delete stopped-task history older than ECSPORTAL_STOPPED_RETENTION_DAYS (or --days)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=int, default=None, help="Keep this many days instead of the setting.")

    def handle(self, *args: Any, **options: Any) -> None:
        days = settings.ECSPORTAL_STOPPED_RETENTION_DAYS if options["days"] is None else options["days"]
        if days < 0:
            raise CommandError("--days cannot be negative.")
        deleted = stopped_prune(days=days, audited=True)
        self.stdout.write(f"Deleted {deleted} stopped tasks older than {days} days.")
