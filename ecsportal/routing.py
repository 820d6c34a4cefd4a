"""Every app's WebSocket routes, gathered in one list for asgi.py."""

from __future__ import annotations

websocket_urlpatterns: list = []
