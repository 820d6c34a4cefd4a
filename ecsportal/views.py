from __future__ import annotations

import asyncio
import hmac
import uuid
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import AuthenticationForm
from django.db import connection, transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_GET

from ecsportal import dashboard, metrics
from ecsportal.accounts.forms import PortalLoginForm
from ecsportal.accounts.selectors import accounts_for_user
from ecsportal.audit.services import audit_record, client_ip


@method_decorator(login_not_required, name="dispatch")
class PortalLoginView(auth_views.LoginView):
    """The one way in (the admin's login page is routed here too), so every login and every
    failed attempt is audited here, explicitly, rather than by auth signal receivers: the event
    is written in the same transaction as the session and last-login change, and a refusal by
    the throttle (django-axes) is recorded as such."""

    template_name = "registration/login.html"
    form_class = PortalLoginForm
    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        with transaction.atomic():
            response = super().form_valid(form)
            user = form.get_user()
            audit_record(actor=user, action="auth.login", target=user.get_username(), source_ip=client_ip(self.request))
        return response

    def form_invalid(self, form: PortalLoginForm) -> HttpResponse:
        locked_out = bool(getattr(self.request, "axes_locked_out", False))
        typed = form.checked_username()
        # A name no user has is recorded as such: people type their password into the username
        # box, and the trail (page, CSV export) must not keep it.
        known = bool(typed) and get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: typed}).exists()
        audit_record(
            actor=None,
            actor_label="anonymous",
            action="auth.login_failed",
            target=typed if known else "(unknown username)",
            details={"locked_out": locked_out},
            source_ip=client_ip(self.request),
        )
        return super().form_invalid(form)


@login_not_required
def login_locked_out(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    """django-axes' answer once a username or an address has failed too often: the login page
    again (429), saying until when, without checking the password. Each refused attempt counts
    as a failure, so the cool-off runs from now."""
    until = timezone.now() + settings.AXES_COOLOFF_TIME
    username = str(request.POST.get("username", ""))[:150]
    context = {
        "form": AuthenticationForm(request, initial={"username": username}),
        "next": request.POST.get("next", ""),
        "locked_until": until,
        "cooloff_minutes": max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)),
    }
    return render(request, "registration/login.html", context, status=429)


class PortalLogoutView(auth_views.LogoutView):
    """Logging out is a POST (CSRF-safe); a typed /logout/ gets a page with the button."""

    http_method_names = ["get", "post", "options"]

    def get(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        return render(request, "registration/logout_confirm.html")

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        user = request.user
        with transaction.atomic():
            if user.is_authenticated:
                audit_record(actor=user, action="auth.logout", target=user.get_username(), source_ip=client_ip(request))
            return super().post(request, *args, **kwargs)


@login_not_required
@require_GET
def session_probe(request: HttpRequest) -> HttpResponse:
    """Is this browser still logged in? live.js asks when its sockets keep being refused (a
    socket refused before the handshake tells the browser nothing), and stops retrying on 401."""
    response = HttpResponse(status=204 if request.user.is_authenticated else 401)
    response["Cache-Control"] = "no-store"
    return response


_PANEL_READS: dict[str, Callable[..., object]] = {
    "failures": dashboard.failures_panel_for_user,
    "approvals": dashboard.approvals_panel_for_user,
    "runs": dashboard.recent_runs_for_user,
    "clusters": dashboard.failed_clusters_for_user,
    "shells": dashboard.shells_for_user,
}


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The dashboard: each panel is also served alone (`home_panel`), which the page re-fetches."""
    context: dict[str, object] = {name: read(user=request.user) for name, read in _PANEL_READS.items()}
    context["accounts"] = accounts_for_user(user=request.user).order_by("name")
    return render(request, "home.html", context)


@require_GET
def home_panel(request: HttpRequest, name: str) -> HttpResponse:
    """One dashboard panel's fragment: polled, or re-fetched when its live socket says so."""
    read = _PANEL_READS.get(name)
    if read is None:
        raise Http404("No such panel.")
    return render(request, f"home/_{name}.html", {name: read(user=request.user)})


def _database_ok() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "not healthy"; the type is the message
        return False, type(exc).__name__
    return True, "ok"


async def _channel_layer_roundtrip() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    name = await layer.new_channel(prefix="healthz")
    token = uuid.uuid4().hex
    await layer.send(name, {"type": "healthz.ping", "token": token})
    message = await asyncio.wait_for(layer.receive(name), timeout=2)
    if message.get("token") != token:
        raise RuntimeError("channel layer returned another message")


def _channel_layer_ok() -> tuple[bool, str]:
    try:
        async_to_sync(_channel_layer_roundtrip)()
    except Exception as exc:
        return False, type(exc).__name__
    return True, "ok"


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Load balancers and the Dockerfile's HEALTHCHECK poll this; it needs no login."""
    db_ok, db_detail = _database_ok()
    layer_ok, layer_detail = _channel_layer_ok()
    healthy = db_ok and layer_ok
    return JsonResponse(
        {"status": "ok" if healthy else "unhealthy", "database": db_detail, "channel_layer": layer_detail},
        status=200 if healthy else 503,
    )


@login_not_required
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus scrapes this with `Authorization: Bearer <ECSPORTAL_METRICS_TOKEN>`.

    No token configured: 404, as if there were no such page. No or another token: 401 or 403.
    The comparison takes the same time whatever the token holds.
    """
    expected = settings.ECSPORTAL_METRICS_TOKEN
    if not expected:
        raise Http404("No such page.")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        response = HttpResponse("A bearer token is needed.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="ecsportal metrics"'
        return response
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        return HttpResponse("Wrong token.\n", status=403, content_type="text/plain")
    response = HttpResponse(metrics.render(metrics.portal_metrics()), content_type=metrics.CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response
