"""Raw-mode runs get their own outcome, "completed" (exit code unknown), instead of "succeeded"."""

from __future__ import annotations

from django.db import migrations, models


def raw_successes_to_completed(apps, schema_editor) -> None:
    """Runs recorded as succeeded in raw mode never had an exit code: nothing said they succeeded."""
    Run = apps.get_model("runs", "Run")
    Run.objects.filter(mode="raw", status="succeeded", exit_code__isnull=True).update(status="completed")


def completed_to_succeeded(apps, schema_editor) -> None:
    Run = apps.get_model("runs", "Run")
    Run.objects.filter(status="completed").update(status="succeeded")


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0002_run_list_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="run",
            name="status",
            field=models.CharField(
                choices=[
                    ("awaiting_approval", "Awaiting approval"),
                    ("queued", "Queued"),
                    ("connecting", "Connecting"),
                    ("running", "Running"),
                    ("succeeded", "Succeeded"),
                    ("completed", "Completed"),
                    ("failed", "Failed"),
                    ("error", "Error"),
                    ("timed_out", "Timed out"),
                    ("cancelled", "Cancelled"),
                ],
                db_index=True,
                default="queued",
                max_length=20,
            ),
        ),
        migrations.RunPython(raw_successes_to_completed, completed_to_succeeded),
    ]
