from __future__ import annotations

from django.urls import path

from ecsportal.batches import views

app_name = "batches"
urlpatterns = [
    path("", views.batch_list, name="list"),
    path("new/", views.batch_new, name="new"),
    path("<int:pk>/", views.batch_detail, name="detail"),
    path("<int:pk>/cancel/", views.batch_cancel, name="cancel"),
    path("<int:pk>/rerun/", views.batch_rerun, name="rerun"),
    path("<int:pk>/transcript.txt", views.batch_transcript, name="transcript"),
    path("<int:pk>/summary.json", views.batch_summary_json, name="summary"),
]
