from __future__ import annotations

from django.urls import path

from ecsportal.accounts import views

app_name = "accounts"
urlpatterns = [
    path("", views.account_list, name="list"),
    path("new/", views.account_create, name="create"),
    path("<int:pk>/", views.account_detail, name="detail"),
    path("<int:pk>/edit/", views.account_edit, name="edit"),
    path("<int:pk>/enabled/", views.account_toggle, name="toggle"),
    path("<int:pk>/test/", views.account_test, name="test"),
    path("<int:pk>/members/", views.membership_add, name="member_add"),
    path("<int:pk>/members/<int:membership_pk>/", views.membership_change, name="member_change"),
    path("<int:pk>/members/<int:membership_pk>/remove/", views.membership_delete, name="member_remove"),
]
