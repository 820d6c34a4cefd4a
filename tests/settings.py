"""Test settings: the project's one settings file, read with development defaults.

Not a second configuration: it only supplies the environment a developer would (DEBUG on, the
local-exec seam on) before importing ecsportal.settings. CI overrides DATABASE_URL and
REDIS_URL to run the same tests on PostgreSQL and Redis.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ.setdefault("ECSPORTAL_LOCAL_EXEC", "true")
os.environ.setdefault("ECSPORTAL_INVENTORY_CACHE_SECONDS", "0")
os.environ.setdefault("ECSPORTAL_STOPPED_COLLECT_INTERVAL", "0")  # no background collector in tests
os.environ.setdefault("ECSPORTAL_APPROVAL_SWEEP_SECONDS", "0")  # nor approval housekeeping
os.environ.setdefault("ECSPORTAL_RUN_SWEEP_SECONDS", "0")  # nor the stale-run sweep
os.environ.setdefault("ECSPORTAL_BATCH_SWEEP_SECONDS", "0")  # nor the batches sweep (tests call it)

from ecsportal.settings import *  # noqa: F403

# The tests' SQLite database is in memory with a shared cache, where a second BEGIN IMMEDIATE
# fails at once ("table is locked") instead of waiting, and the runner's sink shares Django's one
# thread there anyway (runs/sink.py, _shares_one_thread). The demo server of the browser tests, on a
# file, keeps IMMEDIATE.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["OPTIONS"].pop("transaction_mode", None)  # noqa: F405

# The cast's passwords are hashed for every test; the production hasher would dominate the run.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
