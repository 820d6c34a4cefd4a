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

from ecsportal.settings import *  # noqa: E402, F403

# The cast's passwords are hashed for every test; the production hasher would dominate the run.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
