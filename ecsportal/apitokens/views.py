"""The API tokens page: a user's own tokens (create, revoke) and, for portal admins, service tokens."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ecsportal.accounts.models import AwsAccount, Role
from ecsportal.accounts.selectors import accounts_for_user
from ecsportal.apitokens import selectors, services
from ecsportal.apitokens.forms import TokenForm
from ecsportal.audit.services import client_ip

PERSONAL_ROLES = list(Role)
SERVICE_ROLES = [Role.VIEWER, Role.OPERATOR]


def _personal_form(request: HttpRequest, data=None) -> TokenForm:
    return TokenForm(
        data, accounts=accounts_for_user(user=request.user).order_by("name"), roles=PERSONAL_ROLES, prefix="personal"
    )


def _service_form(data=None) -> TokenForm:
    form = TokenForm(data, accounts=AwsAccount.objects.order_by("name"), roles=SERVICE_ROLES, prefix="service")
    form.fields[
        "name"
    ].help_text = "1-40 lowercase letters, digits and hyphens, e.g. deploy-ci; its user is svc-<name>."
    return form


def _page(
    request: HttpRequest, *, personal: TokenForm | None = None, service: TokenForm | None = None, status: int = 200
) -> HttpResponse:
    context = {
        "tokens": selectors.tokens_of_user(user=request.user),
        "service_tokens": selectors.service_tokens(user=request.user),
        "form": personal or _personal_form(request),
        "service_form": (service or _service_form()) if request.user.is_superuser else None,
    }
    return render(request, "apitokens/list.html", context, status=status)


@require_GET
def token_list(request: HttpRequest) -> HttpResponse:
    return _page(request)


def _created(request: HttpRequest, new: services.NewToken) -> HttpResponse:
    response = render(request, "apitokens/created.html", {"token": new.token, "secret": new.secret})
    response["Cache-Control"] = "no-store"  # the secret is in this page, once
    return response


def _create(request: HttpRequest, form, create, *, slot: str) -> HttpResponse:
    """Either form: valid, the token is made by `create` and shown once; else the page again (422)."""
    if form.is_valid():
        data = form.cleaned_data
        try:
            new = create(
                actor=request.user,
                name=data["name"],
                days=data["days"],
                account_pks=[a.pk for a in data["accounts"]],
                max_role=Role(data["max_role"]),
                source_ip=client_ip(request),
            )
        except services.TokenRefused as exc:
            form.add_error(None, str(exc))
        else:
            return _created(request, new)
    return _page(request, **{slot: form}, status=422)


@never_cache
@require_http_methods(["POST"])
def token_create(request: HttpRequest) -> HttpResponse:
    return _create(request, _personal_form(request, request.POST), services.token_create_personal, slot="personal")


@never_cache
@require_http_methods(["POST"])
def service_token_create(request: HttpRequest) -> HttpResponse:
    if not request.user.is_superuser:
        raise PermissionDenied("Only portal administrators create service tokens.")
    return _create(request, _service_form(request.POST), services.token_create_service, slot="service")


@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = selectors.token_get_for_user(user=request.user, token_pk=pk)
    try:
        services.token_revoke(actor=request.user, token=token, source_ip=client_ip(request))
    except services.TokenRefused as exc:
        messages.info(request, str(exc))
    else:
        messages.success(request, f"Token {token.label} is revoked; calls with it now get 401.")
    return redirect("apitokens:list")
