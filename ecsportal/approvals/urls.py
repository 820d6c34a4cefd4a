from __future__ import annotations

from django.urls import path

from ecsportal.approvals import views

app_name = "approvals"
urlpatterns = [
    path("", views.approval_list, name="list"),
    path("inbox/", views.approval_inbox, name="inbox"),
    path("nav/", views.approval_nav, name="nav"),
    path("<int:pk>/", views.approval_detail, name="detail"),
    path("<int:pk>/decide/", views.approval_decide, name="decide"),
    path("<int:pk>/cancel/", views.approval_cancel, name="cancel"),
    path("<int:pk>/acknowledge/", views.approval_acknowledge, name="acknowledge"),
]
