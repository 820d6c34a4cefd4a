"""The API object: `/api/v1/`, every operation behind a token (`auth.TokenAuth`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from ninja import NinjaAPI

from ecsportal.api import approvals, batches, errors, inventory, runs
from ecsportal.api.auth import TokenAuth
from ecsportal.api.schemas import Problem
from ecsportal.apitokens.services import TokenInvalid, token_authenticate
from ecsportal.audit.services import client_ip

DESCRIPTION = """ecsportal's API: the inventory, stopped tasks, runs (with their output and exit
codes), batches (one command on many containers), runbooks, stops and approvals, through the same access gate, approvals and audit trail as
the pages. Authenticate with `Authorization: Bearer ecsp_…` (a token from the API tokens page).
Errors are `application/problem+json` with a `detail` that says what to do."""


def _schema_gate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The schema is for people logged in, or for a valid token (clients, schemathesis)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        if not request.user.is_authenticated:
            header = request.headers.get("Authorization", "")
            try:
                token_authenticate(presented=header.removeprefix("Bearer ").strip(), source_ip=client_ip(request))
            except TokenInvalid as exc:
                return errors.problem(api, request, 401, str(exc))
        return view(request, *args, **kwargs)

    return wrapped


api = NinjaAPI(
    title="ecsportal API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
    auth=TokenAuth(),
    docs_url=None,  # our own page (`views.api_docs`): vendored Swagger UI under the strict CSP
    openapi_url="/openapi.json",
    docs_decorator=_schema_gate,
)
errors.install(api)
api.add_router("", inventory.router)
api.add_router("", runs.router)
api.add_router("", approvals.router)
api.add_router("", batches.router)


def _problems_documented(schema_method: Callable[..., dict]) -> Callable[..., dict]:
    """Every operation's error answers are documented as application/problem+json."""

    @wraps(schema_method)
    def wrapped(*args: Any, **kwargs: Any) -> dict:
        schema = schema_method(*args, **kwargs)
        problem = {"$ref": "#/components/schemas/Problem"}
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = Problem.json_schema()
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                for code, text in errors.TITLES.items():
                    if code == 400:
                        continue
                    responses[str(code)] = {"description": text, "content": {errors.PROBLEM: {"schema": problem}}}
        return schema

    return wrapped


api.get_openapi_schema = _problems_documented(api.get_openapi_schema)
