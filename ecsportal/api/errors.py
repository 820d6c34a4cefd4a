"""Errors as `application/problem+json` (RFC 9457): a title, the status, and a detail a person
can act on. Every refusal the services raise maps here, so no handler writes its own."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from ecsportal.apitokens.services import TokenInvalid
from ecsportal.approvals.services import ApprovalClosed
from ecsportal.aws.errors import AwsError

PROBLEM = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    422: "Invalid request",
    429: "Too many requests",
    502: "AWS did not answer as expected",
}


class Conflict(Exception):
    """The request is valid but the object's state refuses it (a run that already ended)."""


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many requests for this token; retry after {retry_after} seconds.")
        self.retry_after = retry_after


def problem(api: NinjaAPI, request: HttpRequest, status: int, detail: str, **extra: Any) -> HttpResponse:
    body = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status, "detail": detail, **extra}
    response = api.create_response(request, body, status=status)
    response["Content-Type"] = PROBLEM
    return response


def _messages(exc: DjangoValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return " ".join(f"{msg}" for msgs in exc.message_dict.values() for msg in msgs)
    return " ".join(exc.messages)


def _field_errors(exc: NinjaValidationError) -> list[dict[str, str]]:
    out = []
    for error in exc.errors:
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path", "payload")]
        out.append({"field": ".".join(loc) or "request", "message": str(error.get("msg", "invalid"))})
    return out


def install(api: NinjaAPI) -> None:
    def on_validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        errors = _field_errors(exc)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(api, request, 422, f"Check the request: {detail}.", errors=errors)

    def on_auth(request: HttpRequest, exc: Exception) -> HttpResponse:
        detail = (
            str(exc)
            if isinstance(exc, TokenInvalid)
            else ("Send an API token as 'Authorization: Bearer ecsp_…'; create one on the portal's API tokens page.")
        )
        response = problem(api, request, 401, detail)
        response["WWW-Authenticate"] = 'Bearer realm="ecsportal"'
        return response

    handlers: dict[type[Exception], Any] = {
        NinjaValidationError: on_validation,
        AuthenticationError: on_auth,
        TokenInvalid: on_auth,
        Http404: lambda request, exc: problem(api, request, 404, str(exc) or "Not found."),
        PermissionDenied: lambda request, exc: problem(
            api, request, 403, str(exc) or "Your role or your token's scope does not allow this."
        ),
        DjangoValidationError: lambda request, exc: problem(api, request, 422, _messages(exc)),
        Conflict: lambda request, exc: problem(api, request, 409, str(exc)),
        ApprovalClosed: lambda request, exc: problem(api, request, 409, str(exc)),
        AwsError: lambda request, exc: problem(
            api, request, 404 if exc.kind == "not_found" or exc.code.endswith("NotFound") else 502, str(exc)
        ),
        HttpError: lambda request, exc: problem(api, request, exc.status_code, str(exc)),
    }
    for exc_class, handler in handlers.items():
        api.add_exception_handler(exc_class, handler)

    def on_throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
        response = problem(api, request, 429, str(exc), retry_after=exc.retry_after)
        response["Retry-After"] = str(exc.retry_after)
        return response

    api.add_exception_handler(Throttled, on_throttled)
