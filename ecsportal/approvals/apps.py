from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "ecsportal.approvals"
    default_auto_field = "django.db.models.BigAutoField"
