from __future__ import annotations

from django import template
from django.utils.html import format_html

from ecsportal.approvals import registry
from ecsportal.approvals.models import ApprovalRequest

register = template.Library()

_CLASSES = {
    "pending": "text-bg-warning",
    "executing": "text-bg-info",
    "executed": "text-bg-success",
    "failed": "text-bg-danger",
    "rejected": "text-bg-danger",
    "cancelled": "text-bg-secondary",
    "expired": "text-bg-secondary",
}


@register.simple_tag
def approval_badge(approval: ApprovalRequest) -> str:
    """The request's status (expired when pending past its deadline), plus a break-glass mark."""
    status = approval.shown_status
    html = format_html(
        '<span class="badge {}" data-status="{}">{}</span>',
        _CLASSES.get(status, "text-bg-light border"),
        status,
        status,
    )
    if approval.break_glass:
        html += format_html(' <span class="badge text-bg-danger break-glass">{}</span>', "break-glass")
    return html


@register.filter
def action_label(key: str) -> str:
    return registry.label_for(key)
