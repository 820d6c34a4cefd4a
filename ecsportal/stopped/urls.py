from __future__ import annotations

from django.urls import path

from ecsportal.stopped import views

app_name = "stopped"
urlpatterns = [
    path("", views.stopped_list, name="list"),
    path("<int:pk>/", views.stopped_detail, name="detail"),
    path("status/", views.stopped_status, name="status"),
    path("refresh/", views.stopped_refresh, name="refresh"),
    path("export.csv", views.stopped_export_csv, name="export_csv"),
    path("export.json", views.stopped_export_json, name="export_json"),
]
