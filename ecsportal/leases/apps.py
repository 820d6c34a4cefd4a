from django.apps import AppConfig


class LeasesConfig(AppConfig):
    """Database leases: one holder per named job across every process of a deployment."""

    name = "ecsportal.leases"
    default_auto_field = "django.db.models.BigAutoField"
