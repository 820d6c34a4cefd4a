from __future__ import annotations

from django.urls import path

from ecsportal.runs import views

app_name = "runs"
urlpatterns = [
    path("", views.run_list, name="list"),
    path("new/", views.run_new, name="new"),
    path("pick/", views.run_picker, name="picker"),
    path("<int:pk>/", views.run_detail, name="detail"),
    path("<int:pk>/cancel/", views.run_cancel, name="cancel"),
    path("shell/", views.shell_new, name="shell"),
    path("<int:pk>/end/", views.shell_end, name="shell_end"),
    path("<int:pk>/transcript.txt", views.run_transcript, name="transcript"),
    path("<int:pk>/transcript.cast", views.run_cast, name="cast"),
]
