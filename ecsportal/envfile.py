"""Whether settings read a `.env` file: the one rule, kept out of settings.py so it can be tested alone.

A `.env` file is read when the environment says DJANGO_READ_DOT_ENV_FILE=true, or, when the
environment does not say, when the file itself contains the line DJANGO_READ_DOT_ENV_FILE=true
(the way `.env.example` documents it). A stray file without that line changes nothing, and
DJANGO_READ_DOT_ENV_FILE=false in the environment keeps any file out. Values already in the
environment always win over the file's (django-environ only fills in what is missing).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

SWITCH = "DJANGO_READ_DOT_ENV_FILE"
TRUE_WORDS = {"true", "on", "ok", "y", "yes", "1"}  # what django-environ's env.bool takes as true
_SWITCH_LINE = re.compile(rf"^\s*(?:export\s+)?{SWITCH}\s*=\s*(.*?)\s*$")


def _is_true(value: str) -> bool:
    value = value.split(" #", 1)[0].strip().strip("'\"").strip()
    return value.lower() in TRUE_WORDS


def file_opts_in(path: Path) -> bool:
    """True when the file's last DJANGO_READ_DOT_ENV_FILE line says true; False if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    said = False
    for line in text.splitlines():
        found = _SWITCH_LINE.match(line)
        if found:
            said = _is_true(found.group(1))
    return said


def dot_env_to_read(environ: Mapping[str, str], default: Path) -> Path | None:
    """The file settings should read, or None. DJANGO_ENV_FILE names another file than `default`."""
    path = Path(environ.get("DJANGO_ENV_FILE") or default)
    if SWITCH in environ:
        return path if _is_true(environ[SWITCH]) and path.is_file() else None
    return path if path.is_file() and file_opts_in(path) else None
