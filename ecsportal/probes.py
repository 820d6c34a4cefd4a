"""`/healthz` for any Host header: load balancers probe a target by its address.

An AWS load balancer's health check (and many others) sends `Host: 10.0.3.7:8000`, which is
not in ALLOWED_HOSTS, so Django would answer 400 and the target would never turn healthy. This
middleware (early in MIDDLEWARE, before anything reads the host) answers exactly GET
/healthz itself; every other path keeps Django's host validation. The answer holds nothing but
the database's and the channel layer's status, as it does on the portal's own name.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

HEALTHZ = "/healthz"


class HealthzForAnyHostMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == HEALTHZ and request.method == "GET":
            from ecsportal.views import healthz

            return healthz(request)
        return self.get_response(request)
