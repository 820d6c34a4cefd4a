from __future__ import annotations

from django.urls import path

from ecsportal.shells import views

app_name = "shells"
urlpatterns = [
    path("access/new/", views.shell_request, name="request"),
]
