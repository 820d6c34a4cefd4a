from __future__ import annotations

from django.urls import path

from ecsportal.runs.consumers import RunConsumer
from ecsportal.runs.sessions import SessionConsumer

websocket_urlpatterns: list = [
    path("ws/runs/<int:pk>/", RunConsumer.as_asgi()),
    path("ws/sessions/<int:pk>/", SessionConsumer.as_asgi()),
]
