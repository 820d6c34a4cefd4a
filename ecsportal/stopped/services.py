"""Writes of the stopped-task app that people (or cron) ask for: refresh now, prune history."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from ecsportal.accounts.selectors import accounts_for_user
from ecsportal.audit.services import audit_record
from ecsportal.stopped.collector import collection_execute_in_background
from ecsportal.stopped.models import CollectionRun, StoppedTask
from ecsportal.stopped.status import collection_run_active


def stopped_refresh_request(*, user: AbstractBaseUser, source_ip: str | None = None) -> CollectionRun:
    """Start collecting the user's accounts in the background, or join the run already going.

    Returns the run whose progress the page then polls. Collection only reads from AWS, so
    any member (viewer and up) may ask for it.
    """
    with transaction.atomic():
        active = collection_run_active()
        if active is not None:
            return active
        account_pks = list(
            accounts_for_user(user=user).filter(is_enabled=True).order_by("pk").values_list("pk", flat=True)
        )
        run = CollectionRun.objects.create(
            trigger=CollectionRun.Trigger.MANUAL, requested_by=user, account_pks=account_pks
        )
        audit_record(
            actor=user,
            action="stopped.refresh",
            target=f"collection {run.pk}",
            details={"account_pks": account_pks},
            source_ip=source_ip,
        )
        transaction.on_commit(lambda: collection_execute_in_background(run_pk=run.pk))
    return run


def stopped_prune(*, days: int | None = None, audited: bool = False) -> int:
    """Forget stopped tasks older than the retention (and old collection runs); returns rows deleted."""
    keep_days = settings.ECSPORTAL_STOPPED_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=keep_days)
    with transaction.atomic():
        deleted, _ = StoppedTask.objects.filter(stopped_at__lt=cutoff).delete()
        CollectionRun.objects.filter(started_at__lt=cutoff).delete()
        if audited:
            audit_record(
                actor=None,
                action="stopped.prune",
                target=f"older than {keep_days} days",
                details={"deleted": deleted, "cutoff": cutoff.isoformat()},
            )
    return deleted
