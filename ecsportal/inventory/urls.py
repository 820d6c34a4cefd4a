from __future__ import annotations

from django.urls import path

from ecsportal.inventory import views

app_name = "inventory"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("pick/", views.picker, name="picker"),
    path("<int:account_pk>/refresh/", views.refresh, name="refresh"),
    path("<int:account_pk>/<slug:region>/<str:cluster>/", views.cluster_detail, name="cluster"),
    path("<int:account_pk>/<slug:region>/<str:cluster>/tasks/<str:task_id>/", views.task_detail, name="task"),
]
