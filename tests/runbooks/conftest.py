from __future__ import annotations

import pytest

from ecsportal.runbooks.models import Runbook


@pytest.fixture
def echo_book(cast):
    """A runbook on both demo accounts that prints each of its values between bars."""
    runbook = Runbook.objects.create(name="Echo", command_template="printf '%s|' {message} {count}")
    runbook.accounts.set([cast.prod, cast.staging])
    runbook.options.create(name="message", position=0, help_text="Any text.")
    runbook.options.create(name="count", position=1, kind="integer", default="3", min_value=1, max_value=10)
    return runbook
