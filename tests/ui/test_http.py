"""Views that read `request.htmx` say so in their type: `HtmxHttpRequest`, not `HttpRequest`."""

from __future__ import annotations

import ast

import pytest
from django.test import RequestFactory
from django_htmx.middleware import HtmxDetails, HtmxMiddleware

from ecsportal.ui.http import HtmxHttpRequest
from tests.conftest import ROOT

# runs/views.py is typed once the branches that are reshaping it have landed.
TYPED = ["accounts", "approvals", "audit", "inventory", "stopped"]


def _request_annotations(path: str) -> dict[str, str]:
    """Function name → how its `request` parameter is annotated, for functions that read request.htmx."""
    found = {}
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        reads = any(
            isinstance(n, ast.Attribute)
            and n.attr == "htmx"
            and isinstance(n.value, ast.Name)
            and n.value.id == "request"
            for n in ast.walk(node)
        )
        request = next((a for a in node.args.args if a.arg == "request"), None)
        if reads and request is not None:
            found[node.name] = ast.unparse(request.annotation) if request.annotation else ""
    return found


@pytest.mark.parametrize("app", TYPED)
def test_views_that_read_request_htmx_declare_it_in_their_type(app):
    annotations = _request_annotations(f"ecsportal/{app}/views.py")
    assert annotations, "no view reads request.htmx here any more: take the module off the list"
    assert {name: kind for name, kind in annotations.items() if kind != "HtmxHttpRequest"} == {}


def test_the_type_is_what_the_middleware_sets():
    request = RequestFactory().get("/", headers={"HX-Request": "true"})
    HtmxMiddleware(lambda r: None)(request)
    assert isinstance(request.htmx, HtmxDetails) and bool(request.htmx)
    assert HtmxHttpRequest.__annotations__["htmx"] in ("HtmxDetails", HtmxDetails)
