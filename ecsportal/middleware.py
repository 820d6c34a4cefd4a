"""A strict Content Security Policy on every response.

Container output and AWS error texts are hostile input; if any of it ever slipped into markup
unescaped, this policy still keeps it from running: no inline script, no inline style
elements, nothing from another origin.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def policy_with_style_nonce(nonce: str) -> str:
    """The same policy, also applying <style> elements that carry `nonce` (a page's own, per response).

    For pages whose vendored scripts create <style> elements (xterm.js); inline style
    attributes and every script source stay as strict as elsewhere.
    """
    return POLICY.replace("style-src 'self'", f"style-src 'self' 'nonce-{nonce}'", 1)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", POLICY)
        return response
