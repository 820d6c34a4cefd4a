from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.urls import URLPattern, URLResolver, path

from ecsportal.api import views
from ecsportal.api.api import api


def _token_views(patterns: list[URLPattern | URLResolver]) -> list[URLPattern | URLResolver]:
    """The API authenticates every call by its token, not a login: LoginRequiredMiddleware's
    redirect to the login page would be the wrong answer for a script (it gets a 401)."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            _token_views(pattern.url_patterns)
        else:
            pattern.callback = login_not_required(pattern.callback)
    return patterns


api_patterns, _app, _namespace = api.urls
app_name = "api"
urlpatterns = [
    path("docs/", views.api_docs, name="docs"),
    *_token_views(list(api_patterns)),
]
