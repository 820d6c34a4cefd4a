from __future__ import annotations

from django.contrib import admin

from ecsportal.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read only: the trail is append-only (the model refuses changes too); the audit page at
    /audit/ is the place to search it."""

    list_display = ("created_at", "actor_username", "source_ip", "account_name", "action", "target")
    list_filter = ("action",)
    search_fields = ("actor_username", "target", "account_name", "action")
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False
