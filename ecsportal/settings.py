"""Every knob comes from the environment (django-environ); `.env.example` lists them all.

Development and tests get safe local defaults (SQLite, in-memory channel layer, a derived
encryption key). With DJANGO_DEBUG off the process refuses to start on a missing or
placeholder secret, so a production deployment cannot silently run on development defaults.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if env.bool("DJANGO_READ_DOT_ENV_FILE", default=False):
    env.read_env(str(BASE_DIR / ".env"))

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
    "ecsportal.audit",
    "ecsportal.accounts",
    "ecsportal.inventory",
    "ecsportal.approvals",
    "ecsportal.stops",
    "ecsportal.stopped",
    "ecsportal.runs",
    "ecsportal.runbooks",
    "ecsportal.demo",
    "ecsportal.ui",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "ecsportal.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
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
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the embedded runner write while pages read.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env.str("ECSPORTAL_CHANNEL_PREFIX", default="ecsportal")},
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

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False) else None
)

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
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
# inprocess: the runner is an asyncio task in the web server; worker: `manage.py runworker ecsportal-runs`.
ECSPORTAL_RUNNER_MODE = env.str("ECSPORTAL_RUNNER_MODE", default="inprocess")
if ECSPORTAL_RUNNER_MODE not in ("inprocess", "worker"):
    raise ImproperlyConfigured("ECSPORTAL_RUNNER_MODE must be inprocess or worker.")
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
# After Cancel sends Ctrl-C, seconds to wait for the command to end before closing the session.
ECSPORTAL_RUN_CANCEL_GRACE_SECONDS = env.float("ECSPORTAL_RUN_CANCEL_GRACE_SECONDS", default=5.0)
# A session with no data from the agent for this long is ended as "channel lost".
ECSPORTAL_RUN_IDLE_SECONDS = env.float("ECSPORTAL_RUN_IDLE_SECONDS", default=600.0)
# While a task is younger than this, "agent not connected" is retried with backoff.
ECSPORTAL_RUN_AGENT_WAIT_SECONDS = env.float("ECSPORTAL_RUN_AGENT_WAIT_SECONDS", default=60.0)

ECSPORTAL_DEMO_PASSWORD = env.str("ECSPORTAL_DEMO_PASSWORD", default="demo")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {
        "botocore": {"level": "WARNING"},
        "boto3": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        # The data channel's websockets logger: at DEBUG it dumps frames, the token frame too.
        "ecsportal.ssm.websockets": {"level": "WARNING"},
    },
}
