from django.apps import AppConfig


class ShellsConfig(AppConfig):
    """Interactive shells: who may open one on which container, and on what terms (policy.py)."""

    name = "ecsportal.shells"
    default_auto_field = "django.db.models.BigAutoField"
