"""Structured logs: a request ID per HTTP request, the run ID on a runner's records, a JSON format.

`ECSPORTAL_LOG_FORMAT=json` writes one JSON object per line (time, level, logger, message,
request_id, run_id, simple `extra` fields, the traceback); `plain` (the default) writes the
usual text line with the IDs appended. The IDs live in context variables, so they follow a
request or a run through `sync_to_async`/`database_sync_to_async` into worker threads.

`RequestIdMiddleware` (first in MIDDLEWARE) takes a sane incoming `X-Request-ID` (from the
proxy or load balancer) or makes one, returns it in the response's `X-Request-ID` header and
writes one access line per request on `ecsportal.access` (method, path without the query
string, status, milliseconds; /healthz and /metrics at DEBUG, they are polled).
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("ecsportal_request_id", default=None)
run_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("ecsportal_run_id", default=None)

HEADER = "X-Request-ID"
# Letters, digits and the punctuation of common trace IDs; anything else (spaces, quotes, line
# breaks that would forge a log line, 200 characters) is replaced by an ID of our own.
_SANE_ID = re.compile(r"[A-Za-z0-9._:@=+/-]{1,128}")
_QUIET_PATHS = ("/healthz", "/metrics")

access_logger = logging.getLogger("ecsportal.access")

# What every LogRecord has; anything else on a record came from `extra=` and may be shown.
_STANDARD = set(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {"message", "asctime"}
_SCALARS = (str, int, float, bool, type(None))


def incoming_or_new(value: str | None) -> str:
    """The caller's request ID when it is sane, else a fresh one (32 hex digits)."""
    if value and _SANE_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Put the current request and run IDs on every record (None outside a request or run)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            # Django logs a 4xx/5xx answer (and a 500's traceback) after the middleware has
            # returned, passing the request along: its ID comes from there.
            record.request_id = request_id.get() or getattr(getattr(record, "request", None), "request_id", None)
        if not hasattr(record, "run_id"):
            record.run_id = run_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors (CloudWatch, Loki, Elasticsearch …)."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        out: dict[str, Any] = {
            "time": when.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "run_id": getattr(record, "run_id", None),
            "process": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out and isinstance(value, _SCALARS):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """The usual text line, with `request_id=… run_id=…` appended when there are any."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [f"{name}={value}" for name in ("request_id", "run_id") if (value := getattr(record, name, None))]
        if not ids:
            return line
        first, newline, rest = line.partition("\n")  # keep a traceback below the IDs
        return f"{first} [{' '.join(ids)}]{newline}{rest}"


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """settings.LOGGING for `plain` or `json`."""
    formatter = (
        {"()": "ecsportal.logs.JsonFormatter"}
        if log_format == "json"
        else {"()": "ecsportal.logs.PlainFormatter", "format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        # redact: blanks SSM tokens, STS keys and ExecuteCommand commands out of these libraries'
        # DEBUG output, for the day someone turns them up anyway (ecsportal/logredact.py).
        "filters": {
            "context": {"()": "ecsportal.logs.ContextFilter"},
            "redact": {"()": "ecsportal.logredact.RedactSecrets"},
        },
        "formatters": {"portal": formatter},
        # redact on the handler too: every record that reaches the console passes it, whichever
        # logger wrote it (a library's child logger that nobody listed here included).
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "portal", "filters": ["context", "redact"]}
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "botocore": {"level": "WARNING"},
            "boto3": {"level": "WARNING"},
            "daphne": {"level": "WARNING"},
            "axes": {"level": "WARNING"},  # failed logins and lockouts are in the audit trail
            # The data channel's websockets logger: at DEBUG it dumps frames, the token frame too.
            "ecsportal.ssm.websockets": {"level": "WARNING", "filters": ["redact"]},
            "botocore.endpoint": {"filters": ["redact"]},
            "botocore.parsers": {"filters": ["redact"]},
            "botocore.auth": {"filters": ["redact"]},
        },
    }


def _log_access(request: HttpRequest, response: HttpResponse, started: float) -> None:
    level = logging.DEBUG if request.path in _QUIET_PATHS else logging.INFO
    if not access_logger.isEnabledFor(level):
        return
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    method, path, status = request.method, request.path, response.status_code
    access_logger.log(
        level,
        "%s %s %s %.1f ms",
        method,
        path,
        status,
        duration_ms,
        extra={"method": method, "path": path, "status": status, "duration_ms": duration_ms},
    )


class RequestIdMiddleware:
    """Give each HTTP request an ID (the incoming X-Request-ID if sane) for its log lines and answer."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        started, token = self._begin(request)
        try:
            response = self.get_response(request)
            return self._end(request, response, started)
        finally:
            request_id.reset(token)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        started, token = self._begin(request)
        try:
            response = await self.get_response(request)
            return self._end(request, response, started)
        finally:
            request_id.reset(token)

    @staticmethod
    def _begin(request: HttpRequest) -> tuple[float, contextvars.Token[str | None]]:
        rid = incoming_or_new(request.headers.get(HEADER))
        request.request_id = rid  # type: ignore[attr-defined]
        return time.perf_counter(), request_id.set(rid)

    @staticmethod
    def _end(request: HttpRequest, response: HttpResponse, started: float) -> HttpResponse:
        response[HEADER] = request.request_id  # type: ignore[attr-defined]
        _log_access(request, response, started)
        return response


P = ParamSpec("P")
T = TypeVar("T")


def with_run_id(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Decorate a coroutine function whose first argument is a run's pk: its records carry run_id."""

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        pk = args[0] if args else kwargs.get("run_pk")
        token = run_id.set(int(pk) if pk is not None else None)  # type: ignore[arg-type]
        try:
            return await func(*args, **kwargs)
        finally:
            run_id.reset(token)

    return wrapper
