from __future__ import annotations

from django.urls import path

from ecsportal.stops import views

app_name = "stops"
urlpatterns = [
    path("new/", views.stop_new, name="new"),
    path("pick/", views.stop_picker, name="picker"),
]
