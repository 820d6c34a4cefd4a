from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import template
from django.urls import reverse

register = template.Library()

_GONE = {"STOPPING", "DEPROVISIONING", "STOPPED", "DELETED"}


@register.simple_tag
def stop_url(account: Any, region: str, cluster: str, task: Any) -> str:
    """The stop form's URL for a task still running, or "" for one that is stopping or gone.

    Whether the user may ask at all is the view's decision (`can_operate`, from the gate)."""
    if task is None or task.last_status in _GONE or task.desired_status == "STOPPED":
        return ""
    query = urlencode({"account": account.pk, "region": region, "cluster": cluster, "task": task.id})
    return f"{reverse('stops:new')}?{query}"
