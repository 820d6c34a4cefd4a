"""Django's error reports (the DEBUG page, mailed reports) without the portal's secrets.

Django already hides settings named like KEY, SECRET, PASS or TOKEN. Webhook URLs and
connection URLs carry credentials too (a chat webhook's secret is in its path; REDIS_URL and
DATABASE_URL may hold a password), so anything named like a URL, a webhook or a host list is
hidden as well.
"""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter


class PortalExceptionReporterFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile("API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|WEBHOOK|URL|HOSTS", flags=re.I)
