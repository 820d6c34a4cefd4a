"""The request type of views that read `request.htmx`.

django-htmx's middleware sets `htmx` (an `HtmxDetails`) on every request; Django's
`HttpRequest` does not declare it, so a view annotated with it reads an attribute its type
does not have. This is the subclass django-htmx's documentation recommends for type hints.
"""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
