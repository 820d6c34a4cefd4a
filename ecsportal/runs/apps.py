from django.apps import AppConfig


class RunsConfig(AppConfig):
    """Commands run in containers over ECS Exec: runs, their transcripts, the runner, the live view."""

    name = "ecsportal.runs"
    default_auto_field = "django.db.models.BigAutoField"
