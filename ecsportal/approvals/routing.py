from __future__ import annotations

from django.urls import path

from ecsportal.approvals import consumers

websocket_urlpatterns = [
    path("ws/approvals/inbox/", consumers.InboxConsumer.as_asgi()),
    path("ws/approvals/<int:pk>/", consumers.ApprovalConsumer.as_asgi()),
]
