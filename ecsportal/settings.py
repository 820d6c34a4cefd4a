"""Every knob comes from the environment (django-environ); `.env.example` lists them all.

Development and tests get safe local defaults (SQLite, in-memory channel layer, a derived
encryption key). With DJANGO_DEBUG off the process refuses to start on a missing or
placeholder secret, so a production deployment cannot silently run on development defaults.
"""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from ecsportal.envfile import dot_env_to_read
from ecsportal.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# `.env` is read when it says DJANGO_READ_DOT_ENV_FILE=true itself, or the environment does;
# DJANGO_READ_DOT_ENV_FILE=false in the environment keeps it out. The environment always wins.
_DOT_ENV = dot_env_to_read(os.environ, BASE_DIR / ".env")
if _DOT_ENV is not None:
    env.read_env(str(_DOT_ENV))

DEBUG = env.bool("DJANGO_DEBUG", default=False)

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "insecure", "secret", "CHANGE_ME"}
_DEV_SECRET = "django-insecure-development-only-key-never-use-in-production"


def _items(name: str, default: list[str]) -> list[str]:
    """A comma-separated variable without blank items: " , " is as empty as unset."""
    return [item.strip() for item in env.list(name, default=default) if item.strip()]


# An empty variable (as copied from .env.example) means "not set", never "the empty string".
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or (_DEV_SECRET if DEBUG else "")
ALLOWED_HOSTS = _items(
    "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = _items("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Fernet keys for AWS secrets at rest; the first one encrypts, all of them decrypt (rotation).
_raw_keys = _items("ECSPORTAL_SECRET_KEYS", default=[])
if not _raw_keys and DEBUG:
    _raw_keys = [base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()]
ECSPORTAL_SECRET_KEYS: list[str] = _raw_keys


def _is_fernet_key(key: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(key.encode())) == 32
    except ValueError:
        return False


def _refuse_unsafe_production() -> None:
    """Name the variable that is missing, so the operator knows what to set."""
    if DEBUG:
        return
    if SECRET_KEY in PLACEHOLDER_SECRETS or SECRET_KEY == _DEV_SECRET or SECRET_KEY.startswith("django-insecure"):
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is missing or a placeholder; set it to a long random string "
            "(or set DJANGO_DEBUG=true for local development)."
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS is empty; list the host names the portal is served on.")
    if not ECSPORTAL_SECRET_KEYS:
        raise ImproperlyConfigured(
            "ECSPORTAL_SECRET_KEYS is missing; generate one with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`."
        )
    if not all(_is_fernet_key(key) for key in ECSPORTAL_SECRET_KEYS):
        raise ImproperlyConfigured(
            "ECSPORTAL_SECRET_KEYS holds a value that is not a Fernet key (32 url-safe base64-encoded bytes)."
        )


_refuse_unsafe_production()

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_htmx",
    "csp",
    "axes",
    "ecsportal.audit",
    "ecsportal.accounts",
    "ecsportal.inventory",
    "ecsportal.approvals",
    "ecsportal.stops",
    "ecsportal.shells",
    "ecsportal.stopped",
    "ecsportal.runs",
    "ecsportal.runbooks",
    "ecsportal.batches",
    "ecsportal.demo",
    "ecsportal.ui",
    "ecsportal.leases",
    "ecsportal.apitokens",
]

MIDDLEWARE = [
    "ecsportal.logs.RequestIdMiddleware",  # first: every later log line of the request carries its ID
    "ecsportal.probes.HealthzForAnyHostMiddleware",  # load balancers probe by IP, not by host name
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last: it turns a login refused for too many failures into the login page saying when to retry.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "ecsportal.urls"
DEFAULT_EXCEPTION_REPORTER_FILTER = "ecsportal.reporting.PortalExceptionReporterFilter"
ASGI_APPLICATION = "ecsportal.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "ecsportal.context_processors.portal",
            ],
        },
    }
]

DATABASES = {
    "default": env.db_url_config(env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Persistent connections (`?conn_max_age=60` on DATABASE_URL, as docs/deploy.md deploys): with
# them Django checks a reused connection before each request or `database_sync_to_async` call,
# so one that a database restart broke is replaced rather than failing the request. Health
# checks are on whenever connections persist, unless the URL says otherwise
# (`conn_health_checks=false`; django-environ would read that as a true string).
_persist = DATABASES["default"].get("CONN_MAX_AGE", 0) != 0
_checks = DATABASES["default"].get("CONN_HEALTH_CHECKS", _persist)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = (
    _checks if isinstance(_checks, bool) else str(_checks).lower() in {"1", "true", "yes", "on"}
)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the embedded runner write while pages read. IMMEDIATE: the
    # runner stores transcripts on a connection of its own, and in WAL a deferred transaction
    # that read before another connection committed fails at its first write at once
    # (SQLITE_BUSY_SNAPSHOT, no busy wait); taking the write lock at BEGIN waits instead.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "ecsportal.redislayer.RedisChannelLayer",  # channels_redis's, waiting for a connection
            "CONFIG": {
                # Every consumer waits in a blocking BZPOPMIN of 5 s; redis-py 8 gives each socket a
                # 5 s read timeout by default, which tears idle sockets down (1011) every 5 s. Longer.
                # A process opens at most max_connections sockets to Redis; past that a publish waits
                # up to `timeout` seconds for a free one (redis-py's own pool would fail at once).
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": 15,
                        "max_connections": env.int("ECSPORTAL_REDIS_MAX_CONNECTIONS", default=100),
                        "timeout": env.float("ECSPORTAL_REDIS_POOL_WAIT_SECONDS", default=30.0),
                    }
                ],
                "prefix": env.str("ECSPORTAL_CHANNEL_PREFIX", default="ecsportal"),
                # channels_redis queues all of a process's sockets' messages under one key, 100 by
                # default: a busy process dropped doorbells and statuses "over capacity". Output
                # is never lost that way (it is read from the stream or the database), and viewers
                # ask for a status they missed, but fewer drops mean fewer such gaps.
                "capacity": env.int("ECSPORTAL_CHANNEL_CAPACITY", default=2000),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "ecsportal.layers.InMemoryChannelLayer"}}  # see layers.py

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Login throttling (django-axes): after this many failed logins for one username, or from one
# address, further attempts are refused until the cool-off has passed since the last one.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("ECSPORTAL_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("ECSPORTAL_LOGIN_COOLOFF_MINUTES", default=15.0))
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_TIME.total_seconds() <= 0:
    raise ImproperlyConfigured(
        "ECSPORTAL_LOGIN_FAILURE_LIMIT must be 1 or more and ECSPORTAL_LOGIN_COOLOFF_MINUTES more than 0."
    )
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one locks: per user and per address
# A success does not wipe the count: it would reset the address's failures too, so anyone with one
# valid login could interleave it between guesses at another. Failures are forgotten a cool-off
# after the last one.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_CALLABLE = "ecsportal.views.login_locked_out"
AXES_CLIENT_IP_CALLABLE = "ecsportal.audit.services.client_ip"  # the address the audit trail records
AXES_DISABLE_ACCESS_LOG = True  # logins and failures are in the audit trail already
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False

# --- Sessions and cookies. A login lasts this long, however active (no sliding renewal).
SESSION_COOKIE_AGE = int(env.float("ECSPORTAL_SESSION_HOURS", default=12.0) * 3600)
if SESSION_COOKIE_AGE < 60:
    raise ImproperlyConfigured("ECSPORTAL_SESSION_HOURS must be at least a minute (e.g. 12).")
SESSION_SAVE_EVERY_REQUEST = False
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_COOKIE_HTTPONLY = True  # pages send the token from the template (hx-headers), never from the cookie
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# How many proxies the portal sits behind (nginx, an ALB): the client's address is then read
# from X-Forwarded-For, counted from the right (audit.services.client_ip). 0: the peer itself.
ECSPORTAL_TRUSTED_PROXY_HOPS = env.int("ECSPORTAL_TRUSTED_PROXY_HOPS", default=0)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False) else None
)
# HTTPS only outside development: redirect plain HTTP (not /healthz, which the container's own
# check asks over loopback), and tell browsers never to use plain HTTP again (HSTS).
SECURE_SSL_REDIRECT = env.bool("DJANGO_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=False)
# Preloading commits every subdomain of the registrable domain in browsers' built-in lists: the
# domain owner's decision (DJANGO_HSTS_PRELOAD), not a default, so its reminder is silenced.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

# --- Budgets (limits.py, accounts/sockets.py). A request body over this many bytes is refused
# (413) before it is read; the portal takes no uploads, its largest forms are a few KB.
ECSPORTAL_MAX_REQUEST_BODY_BYTES = env.int("ECSPORTAL_MAX_REQUEST_BODY_BYTES", default=1024 * 1024)
# Open WebSockets per user across the deployment (every tab holds one or two); 0: no limit.
ECSPORTAL_SOCKETS_PER_USER = env.int("ECSPORTAL_SOCKETS_PER_USER", default=50)
# Seconds between two re-checks of every open socket's access in a process (accounts/revocation.py:
# expired sessions, deactivated users, changes the broadcast missed). Three queries a sweep.
ECSPORTAL_SOCKET_RECHECK_SECONDS = env.float("ECSPORTAL_SOCKET_RECHECK_SECONDS", default=3.0)
# --- Shells (ecsportal/shells): the longest time one access request may ask for.
ECSPORTAL_SHELL_GRANT_MAX_MINUTES = env.int("ECSPORTAL_SHELL_GRANT_MAX_MINUTES", default=240)

# --- Content Security Policy (django-csp). Nothing inline, nothing from elsewhere. A page that
# reads `request.csp_nonce` (the run page, for the <style> elements xterm.js creates) gets that
# response's nonce in style-src; every other page's policy has no nonce at all.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# An empty value (as .env.example leaves it) means the default: Path("") would be the working
# directory, and WhiteNoise would serve every file in it (.env, the SQLite database) under /static/.
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default="").strip() or BASE_DIR / "staticfiles")
# In development serve straight from static/; in production from STATIC_ROOT, which the Dockerfile fills.
WHITENOISE_USE_FINDERS = DEBUG or not STATIC_ROOT.is_dir()
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- AWS
AWS_ENDPOINT_URL = env.str("AWS_ENDPOINT_URL", default="")
AWS_CONNECT_TIMEOUT = env.float("ECSPORTAL_AWS_CONNECT_TIMEOUT", default=5.0)
AWS_READ_TIMEOUT = env.float("ECSPORTAL_AWS_READ_TIMEOUT", default=20.0)
AWS_MAX_ATTEMPTS = env.int("ECSPORTAL_AWS_MAX_ATTEMPTS", default=5)
# Answer ECS ExecuteCommand locally (moto does not implement it). Demo and tests only.
ECSPORTAL_LOCAL_EXEC = env.bool("ECSPORTAL_LOCAL_EXEC", default=False)
# With it: the SSM agent emulator of another process (`manage.py demo --aws-only` prints both).
ECSPORTAL_LOCAL_EXEC_EMULATOR = env.str("ECSPORTAL_LOCAL_EXEC_EMULATOR", default="")
ECSPORTAL_LOCAL_EXEC_EMULATOR_KEY = env.str("ECSPORTAL_LOCAL_EXEC_EMULATOR_KEY", default="")
INVENTORY_CACHE_SECONDS = env.int("ECSPORTAL_INVENTORY_CACHE_SECONDS", default=15)
# Stopped tasks: ECS forgets them after about an hour, so the embedded server collects them
# every this many seconds (0 = off, e.g. when `manage.py collect_stopped_tasks --loop` runs instead).
ECSPORTAL_STOPPED_COLLECT_INTERVAL = env.int("ECSPORTAL_STOPPED_COLLECT_INTERVAL", default=300)
ECSPORTAL_STOPPED_RETENTION_DAYS = env.int("ECSPORTAL_STOPPED_RETENTION_DAYS", default=14)

# Approvals: an optional chat webhook (JSON with a `text` field) on request, decision and execution,
# and the portal's public address so the messages can link to the request.
ECSPORTAL_APPROVAL_WEBHOOK_URL = env.str("ECSPORTAL_APPROVAL_WEBHOOK_URL", default="")
if ECSPORTAL_APPROVAL_WEBHOOK_URL and not ECSPORTAL_APPROVAL_WEBHOOK_URL.startswith(("https://", "http://")):
    # The value itself is a secret: the message names the variable, never the URL.
    raise ImproperlyConfigured("ECSPORTAL_APPROVAL_WEBHOOK_URL must be an http(s):// URL.")
ECSPORTAL_BASE_URL = env.str("ECSPORTAL_BASE_URL", default="")
# Seconds between sweeps that fail approvals left "executing" by a process that died (0 = off).
ECSPORTAL_APPROVAL_SWEEP_SECONDS = env.int("ECSPORTAL_APPROVAL_SWEEP_SECONDS", default=60)

# Runs (commands in containers over ECS Exec).
# inprocess: the runner is an asyncio task in the web server; worker: `manage.py runsworker`.
ECSPORTAL_RUNNER_MODE = env.str("ECSPORTAL_RUNNER_MODE", default="inprocess")
if ECSPORTAL_RUNNER_MODE not in ("inprocess", "worker"):
    raise ImproperlyConfigured("ECSPORTAL_RUNNER_MODE must be inprocess or worker.")
# A process told to stop (SIGTERM) lets the runs it holds finish for this long, then ends them
# saying why. Keep it a few seconds under the orchestrator's stop timeout (ECS: stopTimeout, 30 s
# by default; Kubernetes: terminationGracePeriodSeconds, 30 s by default).
ECSPORTAL_DRAIN_SECONDS = env.float("ECSPORTAL_DRAIN_SECONDS", default=25.0)
# A run is closed after this many seconds (ECS ends idle sessions after 20 minutes).
ECSPORTAL_RUN_TIME_LIMIT_SECONDS = env.int("ECSPORTAL_RUN_TIME_LIMIT_SECONDS", default=900)
# Seconds between the runner's heartbeats and cancel checks.
ECSPORTAL_RUN_HEARTBEAT_SECONDS = env.float("ECSPORTAL_RUN_HEARTBEAT_SECONDS", default=2.0)
# Seconds between DescribeTasks checks that the run's task is still RUNNING.
ECSPORTAL_RUN_TASK_CHECK_SECONDS = env.float("ECSPORTAL_RUN_TASK_CHECK_SECONDS", default=10.0)
# An active run whose heartbeat is older than this is ended as "runner lost".
ECSPORTAL_RUN_STALE_SECONDS = env.float("ECSPORTAL_RUN_STALE_SECONDS", default=60.0)
# Seconds between sweeps for runs whose runner was lost (0 = off).
ECSPORTAL_RUN_SWEEP_SECONDS = env.float("ECSPORTAL_RUN_SWEEP_SECONDS", default=30.0)
# Batches ("Run on many"): the most containers one batch may target (the preview says when a
# filter matches more), the most targets it may run at once, and the seconds between sweeps
# that resume a batch whose scheduler died with its process (0 = off).
ECSPORTAL_BATCH_MAX_TARGETS = env.int("ECSPORTAL_BATCH_MAX_TARGETS", default=500)
ECSPORTAL_BATCH_MAX_CONCURRENCY = env.int("ECSPORTAL_BATCH_MAX_CONCURRENCY", default=50)
ECSPORTAL_BATCH_SWEEP_SECONDS = env.float("ECSPORTAL_BATCH_SWEEP_SECONDS", default=15.0)
# After Cancel sends Ctrl-C, seconds to wait for the command to end before closing the session.
ECSPORTAL_RUN_CANCEL_GRACE_SECONDS = env.float("ECSPORTAL_RUN_CANCEL_GRACE_SECONDS", default=5.0)
# Silence limit: a run with no output for this many seconds is closed, saying "no output for …"
# (0 = none). A lost data channel is told apart by the WebSocket's pings, not by silence.
ECSPORTAL_RUN_IDLE_SECONDS = env.float("ECSPORTAL_RUN_IDLE_SECONDS", default=600.0)
# Output stored (and shown) per run; past it the rest is cut with a note and the run goes on.
ECSPORTAL_RUN_OUTPUT_BUDGET_BYTES = env.int("ECSPORTAL_RUN_OUTPUT_BUDGET_BYTES", default=64 * 1024 * 1024)
# A busy run's output goes to its viewers at most once per this many milliseconds (idle: at once).
ECSPORTAL_RUN_COALESCE_MS = env.float("ECSPORTAL_RUN_COALESCE_MS", default=20.0)
# How long a run's output and end are retried while the database is away, before the run ends.
ECSPORTAL_RUN_STORE_RETRY_SECONDS = env.float("ECSPORTAL_RUN_STORE_RETRY_SECONDS", default=120.0)
# While a task is younger than this, "agent not connected" is retried with backoff.
ECSPORTAL_RUN_AGENT_WAIT_SECONDS = env.float("ECSPORTAL_RUN_AGENT_WAIT_SECONDS", default=60.0)
# Concurrent runs (connecting or running) in the whole deployment, and per user who requested
# them. Past either a run waits, queued, and its page says why; 0 = no limit.
ECSPORTAL_RUNS_MAX_ACTIVE = env.int("ECSPORTAL_RUNS_MAX_ACTIVE", default=500)
ECSPORTAL_RUNS_MAX_ACTIVE_PER_USER = env.int("ECSPORTAL_RUNS_MAX_ACTIVE_PER_USER", default=50)
# How long starting a session is tried again when AWS throttles ExecuteCommand, its endpoint
# cannot be reached or does not answer, or the data channel's connection is refused or times out
# before the token is sent (many runs started at once; an overloaded endpoint).
ECSPORTAL_RUN_START_RETRY_SECONDS = env.float("ECSPORTAL_RUN_START_RETRY_SECONDS", default=45.0)

# --- The API (/api/v1/) and its tokens
ECSPORTAL_CHANNEL_PREFIX = env.str("ECSPORTAL_CHANNEL_PREFIX", default="ecsportal")
# A token lives at most this many days (its creator picks 1..this).
ECSPORTAL_API_TOKEN_MAX_DAYS = env.int("ECSPORTAL_API_TOKEN_MAX_DAYS", default=90)
# Active personal tokens per user; past it, creating one says to revoke one first.
ECSPORTAL_API_TOKENS_PER_USER = env.int("ECSPORTAL_API_TOKENS_PER_USER", default=20)
# Requests per token per minute (0 = unlimited); past it a 429 with Retry-After.
ECSPORTAL_API_REQUESTS_PER_MINUTE = env.int("ECSPORTAL_API_REQUESTS_PER_MINUTE", default=600)
# The longest a client may wait in one output long poll (GET /api/v1/runs/<id>/output?wait=…).
ECSPORTAL_API_LONG_POLL_SECONDS = env.float("ECSPORTAL_API_LONG_POLL_SECONDS", default=20.0)
# Interactive shells (runs/interactive.py): a shell with no input for this many seconds ends
# (a warning a minute before); every shell ends at its maximum length.
ECSPORTAL_SHELL_IDLE_SECONDS = env.float("ECSPORTAL_SHELL_IDLE_SECONDS", default=900.0)
ECSPORTAL_SHELL_MAX_SECONDS = env.int("ECSPORTAL_SHELL_MAX_SECONDS", default=3600)
# Input one shell socket may send: bytes per frame, and bytes per second (a burst of 4 s allowed).
ECSPORTAL_SHELL_INPUT_FRAME_BYTES = env.int("ECSPORTAL_SHELL_INPUT_FRAME_BYTES", default=16 * 1024)
ECSPORTAL_SHELL_INPUT_BYTES_PER_SECOND = env.int("ECSPORTAL_SHELL_INPUT_BYTES_PER_SECOND", default=64 * 1024)
# A seat in a shell (who is in it) is a lease its process renews every third of this; a process
# killed without a goodbye leaves seats that count for nobody after it (and are swept).
ECSPORTAL_SHELL_SEAT_LEASE_SECONDS = env.float("ECSPORTAL_SHELL_SEAT_LEASE_SECONDS", default=15.0)

ECSPORTAL_DEMO_PASSWORD = env.str("ECSPORTAL_DEMO_PASSWORD", default="demo")

# /metrics (Prometheus text format) answers only `Authorization: Bearer <this token>`; unset: 404.
ECSPORTAL_METRICS_TOKEN = env.str("ECSPORTAL_METRICS_TOKEN", default="")
if ECSPORTAL_METRICS_TOKEN and len(ECSPORTAL_METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("ECSPORTAL_METRICS_TOKEN is too short; use 16 or more random characters.")

# Logs: `plain` text lines or `json` (one object per line), each with the request's and the run's ID.
ECSPORTAL_LOG_FORMAT = env.str("ECSPORTAL_LOG_FORMAT", default="plain")
if ECSPORTAL_LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured("ECSPORTAL_LOG_FORMAT must be plain or json.")
LOGGING = logging_config(log_format=ECSPORTAL_LOG_FORMAT, level=env.str("DJANGO_LOG_LEVEL", default="INFO"))
