from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "ecsportal.inventory"
    default_auto_field = "django.db.models.BigAutoField"
