from __future__ import annotations

from datetime import UTC, datetime

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.utils import timezone
from django.utils.html import format_html

from ecsportal.ui.html import row_html

register = template.Library()


@register.simple_tag
def when(value: datetime | None, empty: str = "—") -> str:
    """A relative time with the absolute UTC time on hover; app.js adds the viewer's local time
    and zone to the hover (the `datetime` attribute is what it reads)."""
    if value is None:
        return empty
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    absolute = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    # row_html: the output of format_html without its lazy-string wrappers (long tables call this per row)
    return row_html('<time datetime="{}" title="{}">{}</time>', value.isoformat(), absolute, naturaltime(value))


_STATUS_CLASSES = {
    "RUNNING": "text-bg-success",
    "ACTIVE": "text-bg-light border",  # the normal state of clusters and services: no colour
    "PENDING": "text-bg-warning",
    "PROVISIONING": "text-bg-warning",
    "ACTIVATING": "text-bg-warning",
    "STOPPED": "text-bg-secondary",
    "STOPPING": "text-bg-secondary",
    "DEACTIVATING": "text-bg-secondary",
    "INACTIVE": "text-bg-secondary",
}


@register.simple_tag
def status_badge(status: str) -> str:
    css = _STATUS_CLASSES.get((status or "").upper(), "text-bg-light border")
    return format_html('<span class="badge {}">{}</span>', css, (status or "unknown").lower())


@register.filter
def short_arn(value: str) -> str:
    return (value or "").rsplit("/", 1)[-1]
