from __future__ import annotations

from django.apps import AppConfig


class StoppedConfig(AppConfig):
    """Stopped-task history. The periodic collector is started by asgi.py, never here, so that
    tests and management commands never start a background thread by importing the app."""

    name = "ecsportal.stopped"
    label = "stopped"
    verbose_name = "Stopped tasks"
