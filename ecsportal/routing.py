"""Every app's WebSocket routes, gathered in one list for asgi.py."""

from __future__ import annotations

from ecsportal.approvals.routing import websocket_urlpatterns as approvals_ws
from ecsportal.runs.routing import websocket_urlpatterns as runs_ws

websocket_urlpatterns: list = []
websocket_urlpatterns += approvals_ws
websocket_urlpatterns += runs_ws
