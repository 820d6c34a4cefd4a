"""`manage.py collect_stopped_tasks [--loop SECONDS] [--account ID] [--cluster NAME]`.

For deployments that collect outside the web server (set ECSPORTAL_STOPPED_COLLECT_INTERVAL=0
there). Exits 1 when a cluster failed in a single run, so cron and CI notice.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections
from django.db.models import Q

from ecsportal.accounts.models import AwsAccount
from ecsportal.stopped.collector import stopped_collect
from ecsportal.stopped.models import ClusterCollection, CollectionRun
from ecsportal.stopped.services import stopped_prune


class Command(BaseCommand):
    help = "Collect stopped ECS tasks into the portal's history (once, or every --loop seconds)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--loop", type=int, metavar="SECONDS", help="Collect again every SECONDS, forever.")
        parser.add_argument(
            "--account", action="append", default=[], metavar="ID",
            help="Only this account: portal ID, 12-digit AWS account ID or name (repeatable).",
        )  # fmt: skip
        parser.add_argument(
            "--cluster", action="append", default=[], metavar="NAME", help="Only this cluster (repeatable)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = self._accounts(options["account"]) if options["account"] else None
        clusters = set(options["cluster"]) or None
        if options["loop"] is not None and options["loop"] <= 0:
            raise CommandError("--loop needs a positive number of seconds.")
        while True:
            run = stopped_collect(trigger=CollectionRun.Trigger.COMMAND, accounts=accounts, clusters=clusters)
            self._report(run)
            if not options["loop"]:
                if run.clusters_failed:
                    raise SystemExit(1)
                return
            stopped_prune()
            close_old_connections()
            time.sleep(options["loop"])

    def _accounts(self, refs: list[str]) -> list[AwsAccount]:
        found: list[AwsAccount] = []
        for ref in refs:
            query = Q(name=ref) | Q(account_id=ref)
            if ref.isdigit() and len(ref) != 12:
                query |= Q(pk=int(ref))
            matches = list(AwsAccount.objects.filter(query))
            if not matches:
                raise CommandError(f"No account {ref!r}: give the portal ID, the AWS account ID or the name.")
            found.extend(matches)
        return found

    def _report(self, run: CollectionRun) -> None:
        self.stdout.write(
            f"Collected {run.tasks_seen} stopped tasks ({run.tasks_new} new) from "
            f"{run.clusters_done - run.clusters_failed} of {run.clusters_total} clusters."
        )
        for row in ClusterCollection.objects.filter(run=run, state=ClusterCollection.State.ERROR).select_related(
            "account"
        ):
            where = f"cluster {row.cluster}" if row.cluster else f"region {row.region}"
            self.stderr.write(f"{row.account.name} · {row.region} · {where}: {row.last_error}")
