from django.apps import AppConfig


class RunbooksConfig(AppConfig):
    """Saved commands with typed options (the self-service page); each use becomes a run."""

    name = "ecsportal.runbooks"
    default_auto_field = "django.db.models.BigAutoField"
