"""Reads of collection state: the run in progress and each cluster's last collection.

The "Refresh now" status fragment and the home page's failed-clusters panel read these; the
collector writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone

from ecsportal.accounts.selectors import accounts_for_user
from ecsportal.stopped.models import ClusterCollection, CollectionRun

# A run that has not finished after this long died with its process; it no longer blocks a new one.
RUN_STALE_AFTER = timedelta(minutes=15)


def collection_run_active() -> CollectionRun | None:
    """The run in progress, if any (runs abandoned by a dead process do not count)."""
    return (
        CollectionRun.objects.filter(finished_at__isnull=True, started_at__gte=timezone.now() - RUN_STALE_AFTER)
        .order_by("-started_at")
        .first()
    )


@dataclass
class CollectionStatus:
    clusters: list[ClusterCollection]
    active: CollectionRun | None
    last_finished_at: datetime | None
    # A run's totals span its whole scope; show them only to people who may see all of it.
    active_counts_visible: bool = False

    @property
    def errors(self) -> list[ClusterCollection]:
        return [c for c in self.clusters if c.state == ClusterCollection.State.ERROR]

    @property
    def ok_count(self) -> int:
        return sum(1 for c in self.clusters if c.state == ClusterCollection.State.OK)

    @property
    def queued_count(self) -> int:
        return sum(1 for c in self.clusters if c.state == ClusterCollection.State.QUEUED)


def collection_status_for_user(*, user: AbstractBaseUser) -> CollectionStatus:
    """Per-cluster collection state for the user's accounts, and the run in progress if any."""
    accounts = accounts_for_user(user=user)
    clusters = list(
        ClusterCollection.objects.filter(account__in=accounts)
        .select_related("account", "run")
        .order_by("account__name", "region", "cluster")
    )
    last = (
        CollectionRun.objects.filter(finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
    ).first()
    active = collection_run_active()
    visible = active is not None and (
        user.is_superuser
        or (bool(active.account_pks) and set(active.account_pks) <= set(accounts.values_list("pk", flat=True)))
    )
    return CollectionStatus(clusters=clusters, active=active, last_finished_at=last, active_counts_visible=visible)
