from __future__ import annotations

from django.contrib import admin

from ecsportal.audit.models import AuditEvent
from ecsportal.ui.readonly_admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read only: the trail is append-only (the model refuses changes too); the audit page at
    /audit/ is the place to search it."""

    list_display = ("created_at", "actor_username", "source_ip", "account_name", "action", "target")
    list_filter = ("action",)
    search_fields = ("actor_username", "target", "account_name", "action")
    date_hierarchy = "created_at"
