"""`Authorization: Bearer ecsp_…`: the token's user, carrying its scope, then the throttle.

Only tokens: the API takes no session cookie, so no cross-site request can ride a login (and
CSRF does not arise). The token is never logged: refusals name its prefix at most.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer

from ecsportal.api.errors import Throttled
from ecsportal.apitokens.services import token_authenticate
from ecsportal.apitokens.throttle import throttle_check
from ecsportal.audit.services import client_ip


class TokenAuth(HttpBearer):
    openapi_description = "An ecsportal API token (ecsp_…), from the portal's API tokens page."

    def authenticate(self, request: HttpRequest, token: str):
        api_token, user = token_authenticate(presented=token, source_ip=client_ip(request))
        wait = throttle_check(token_key=api_token.prefix)
        if wait is not None:
            raise Throttled(wait)
        request.user = user
        request.api_token = api_token
        return user
