"""The environment of a process configured as deployed (DEBUG off), for the benchmarks.

With DEBUG on, Django keeps every query's SQL and WhiteNoise re-scans static files: figures
measured that way are not the product's. Everything else a production process needs is set
to throwaway values for loopback: a random secret key and Fernet key, loopback hosts, plain
HTTP (no HTTPS redirect, cookies not marked Secure).
"""

from __future__ import annotations

import base64
import secrets


def deployed_environ() -> dict[str, str]:
    return {
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
        "ECSPORTAL_SECRET_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "DJANGO_ALLOWED_HOSTS": "localhost,127.0.0.1,testserver",
        "DJANGO_SSL_REDIRECT": "false",
        "DJANGO_SECURE_COOKIES": "false",
        "DJANGO_HSTS_SECONDS": "0",
        "ECSPORTAL_LOCAL_EXEC": "false",
    }
