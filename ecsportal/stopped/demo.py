"""Stopped-task history for `manage.py demo`: one real collection, then a week of DEMO DATA.

ECS (and moto) only remember the last hour, so a fresh demo would open on a near-empty chart.
After collecting what moto holds, this copies those rows back in time over the past 7 days,
with an image-pull incident two days ago, so the chart and the signatures look like a real
week. Every row added here is DEMO DATA: its task ARN ends in an ID starting with "de3d0",
which no ECS task has (ECS task IDs are 32 random hex digits), and it is never written outside
the demo.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.utils import timezone

from ecsportal.stopped.collector import _UPDATE_FIELDS, stopped_collect
from ecsportal.stopped.models import CollectionRun, StoppedTask

DEMO_ID_PREFIX = "de3d0"  # marks DEMO DATA rows


def seed_demo_history(*, now: datetime | None = None, days: int = 7) -> int:
    """Collect once from the local AWS, then add a week of DEMO DATA; returns rows added."""
    stopped_collect(trigger=CollectionRun.Trigger.DEMO)
    now = now or timezone.now()
    templates = list(StoppedTask.objects.exclude(task_arn__contains=f"/{DEMO_ID_PREFIX}"))
    if not templates:
        return 0
    rng = random.Random(20261127)  # the same week every time the demo starts
    weights = {"deployment": 3, "out-of-memory": 4, "exit-1": 3, "elb-health-check": 2, "portal": 1}
    rows: list[StoppedTask] = []
    for hour in range(2, days * 24):
        at = now - timedelta(hours=hour)
        burst = 2 if 9 <= at.hour <= 17 else 1  # office hours deploy more
        for _ in range(rng.choice([0, 0, 1, 1, 2]) * burst):
            template = rng.choices(templates, [weights.get(t.category, 1) for t in templates])[0]
            rows.append(_copy(template, len(rows), at - timedelta(minutes=rng.randrange(60))))
        if 46 <= hour <= 49:  # DEMO DATA: an image-pull incident two days ago
            pulls = [t for t in templates if t.category == "cannot-pull-container"]
            for _ in range(rng.randrange(6, 12) if pulls else 0):
                rows.append(_copy(pulls[0], len(rows), at - timedelta(minutes=rng.randrange(60))))
    StoppedTask.objects.bulk_create(
        rows, batch_size=250, update_conflicts=True, unique_fields=["account", "task_arn"], update_fields=_UPDATE_FIELDS
    )
    return len(rows)


def _copy(template: StoppedTask, index: int, stopped_at: datetime) -> StoppedTask:
    """DEMO DATA: a copy of a collected row, moved back in time under a made-up task ID."""
    row = StoppedTask(**{f.attname: getattr(template, f.attname) for f in StoppedTask._meta.concrete_fields})
    row.pk = None
    task_id = f"{DEMO_ID_PREFIX}{index:027x}"
    row.task_arn = f"{template.task_arn.rsplit('/', 1)[0]}/{task_id}"
    shift = stopped_at - template.stopped_at
    for name in ("started_at", "stopping_at", "execution_stopped_at"):
        value = getattr(template, name)
        setattr(row, name, value + shift if value else None)
    row.stopped_at = stopped_at
    row.stopped_hour = int(stopped_at.timestamp() // 3600)
    row.first_seen_at = row.last_seen_at = stopped_at + timedelta(minutes=3)
    row.search_text = template.search_text.replace(template.task_id, task_id)
    return row
