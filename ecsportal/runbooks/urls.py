from __future__ import annotations

from django.urls import path

from ecsportal.runbooks import views

app_name = "runbooks"
urlpatterns = [
    path("", views.runbook_list, name="list"),
    path("<int:pk>/", views.runbook_run, name="run"),
    path("<int:pk>/pick/", views.runbook_picker, name="picker"),
    path("manage/", views.manage_list, name="manage"),
    path("manage/new/", views.manage_create, name="manage_create"),
    path("manage/<int:pk>/", views.manage_edit, name="manage_edit"),
    path("manage/<int:pk>/enabled/", views.manage_enabled, name="manage_enabled"),
    path("manage/<int:pk>/delete/", views.manage_delete, name="manage_delete"),
]
