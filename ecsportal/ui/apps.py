from django.apps import AppConfig


class UiConfig(AppConfig):
    """Template tags shared by every page (times, badges); no models."""

    name = "ecsportal.ui"
