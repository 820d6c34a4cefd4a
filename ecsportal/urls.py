from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from ecsportal import views

urlpatterns = [
    path("", views.home, name="home"),
    path("home/<slug:name>/", views.home_panel, name="home_panel"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics_view, name="metrics"),
    path("session", views.session_probe, name="session_probe"),
    path("login/", views.PortalLoginView.as_view(), name="login"),
    path("logout/", views.PortalLogoutView.as_view(), name="logout"),
    path("accounts/", include("ecsportal.accounts.urls")),
    path("inventory/", include("ecsportal.inventory.urls")),
    path("stopped/", include("ecsportal.stopped.urls")),
    path("audit/", include("ecsportal.audit.urls")),
    path("approvals/", include("ecsportal.approvals.urls")),
    path("stops/", include("ecsportal.stops.urls")),
    path("shells/", include("ecsportal.shells.urls")),
    path("runs/", include("ecsportal.runs.urls")),
    path("runbooks/", include("ecsportal.runbooks.urls")),
    path("batches/", include("ecsportal.batches.urls")),
    path("tokens/", include("ecsportal.apitokens.urls")),
    path("api/v1/", include("ecsportal.api.urls")),
    # The admin logs in and out through the portal's views: one throttled, audited way in and out.
    path("admin/login/", views.PortalLoginView.as_view(redirect_authenticated_user=False), name="admin_login"),
    path("admin/logout/", views.PortalLogoutView.as_view(), name="admin_logout"),
    path("admin/", admin.site.urls),
]
