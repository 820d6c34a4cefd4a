"""A small JSON client for /api/v1/ over urllib: the token in a header, problems as exceptions."""

from __future__ import annotations

import configparser
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from ecsportal_cli import __version__


class ConfigError(Exception):
    pass


class ApiError(Exception):
    """The portal answered with a problem (status, detail), or could not be reached (status 0)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def config_path() -> Path:
    if os.environ.get("ECSPORTAL_CONFIG"):
        return Path(os.environ["ECSPORTAL_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ecsportal" / "config.ini"


def load_config() -> tuple[str, str]:
    """(url, token): the environment first (ECSPORTAL_URL, ECSPORTAL_TOKEN), then the config file."""
    url, token = os.environ.get("ECSPORTAL_URL", ""), os.environ.get("ECSPORTAL_TOKEN", "")
    path = config_path()
    if (not url or not token) and path.exists():
        parser = configparser.ConfigParser()
        parser.read(path)
        section = parser["ecsportal"] if parser.has_section("ecsportal") else {}
        url = url or section.get("url", "")
        token = token or section.get("token", "")
    if not url:
        raise ConfigError(f"Set ECSPORTAL_URL (e.g. https://ecsportal.example.com) or url= in {path} [ecsportal].")
    if not token:
        raise ConfigError(f"Set ECSPORTAL_TOKEN (create one on the portal's API tokens page) or token= in {path}.")
    return url.rstrip("/"), token.strip()


LOOPBACK = ("localhost", "127.0.0.1", "::1")


def check_url(url: str) -> str:
    """https, or http to this machine only: a token sent in clear text over a network is a token lost."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK):
        return url.rstrip("/")
    if parts.scheme == "http" and os.environ.get("ECSPORTAL_ALLOW_HTTP") == "1":
        return url.rstrip("/")
    raise ConfigError(
        f"ECSPORTAL_URL must be https:// (or http:// to localhost): {parts.scheme or 'no'} scheme given. "
        "ECSPORTAL_ALLOW_HTTP=1 allows plain http elsewhere, sending the token unencrypted."
    )


class Client:
    def __init__(self, url: str, token: str, timeout: float = 60.0) -> None:
        self.base = check_url(url) + "/api/v1"
        self.token = token
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        url = self.base + path + (("?" + urllib.parse.urlencode(query)) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(  # noqa: S310 (the scheme was checked by check_url: http(s) only)
            url,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": f"ecsportal-cli/{__version__}",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as response:  # noqa: S310 (as above)
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, _detail(exc)) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(0, f"Could not reach {self.base}: {reason}") from None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        return self.request("POST", path, body=body or {}, timeout=timeout)


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(exc.read() or b"{}")
    except ValueError:
        payload = {}
    detail = payload.get("detail") if isinstance(payload, dict) else None
    if exc.code == 429 and exc.headers.get("Retry-After"):
        detail = (detail or "Too many requests.") + f" (Retry-After: {exc.headers['Retry-After']} s)"
    return str(detail or f"HTTP {exc.code} {exc.reason}")
