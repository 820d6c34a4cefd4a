"""Rows the portal stopped before it knew its own stop reasons get the "portal" category.

Only rows whose reason starts as `stops.reason` writes it; their signature is recomputed the
way the collector computes it now (`categories` is pure, so it is safe to call from here).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

from ecsportal.stopped import categories


def reclassify(apps: Any, schema_editor: Any) -> None:
    StoppedTask = apps.get_model("stopped", "StoppedTask")
    rows = StoppedTask.objects.filter(stopped_reason__startswith="ecsportal #").exclude(category="portal")
    changed = []
    for row in rows.only("pk", "family", "stopped_reason").iterator(chunk_size=1000):
        if not categories.PORTAL_REASON.match(row.stopped_reason):
            continue
        text = categories.normalize_reason(row.stopped_reason)
        row.category = "portal"
        row.signature_container = ""
        row.signature_text = text
        row.signature = categories.signature_key(
            category_id="portal", family=row.family, container="", normalized_reason=text
        )
        changed.append(row)
    StoppedTask.objects.bulk_update(
        changed, ["category", "signature", "signature_container", "signature_text"], batch_size=1000
    )


class Migration(migrations.Migration):
    dependencies = [("stopped", "0002_covering_index_with_service")]

    operations = [migrations.RunPython(reclassify, migrations.RunPython.noop)]
