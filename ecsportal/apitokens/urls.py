from __future__ import annotations

from django.urls import path

from ecsportal.apitokens import views

app_name = "apitokens"
urlpatterns = [
    path("", views.token_list, name="list"),
    path("new/", views.token_create, name="create"),
    path("service/new/", views.service_token_create, name="service_create"),
    path("<int:pk>/revoke/", views.token_revoke, name="revoke"),
]
