from __future__ import annotations

from django.urls import path

from ecsportal.runs.consumers import RunConsumer

websocket_urlpatterns: list = [
    path("ws/runs/<int:pk>/", RunConsumer.as_asgi()),
]
