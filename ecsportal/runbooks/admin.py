from __future__ import annotations

from django.contrib import admin

from ecsportal.runbooks.models import Runbook, RunbookOption
from ecsportal.ui.readonly_admin import ReadOnlyAdmin


class RunbookOptionInline(admin.TabularInline):
    """Read only, like the runbook: changes go through /runbooks/manage/, which validates and audits."""

    model = RunbookOption
    extra = 0
    fields = ("position", "name", "kind", "required", "default", "pattern", "choices", "secret", "flag")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Runbook)
class RunbookAdmin(ReadOnlyAdmin):
    list_display = ("name", "command_template", "needs_approval", "is_enabled", "updated_at")
    list_filter = ("needs_approval", "is_enabled", "accounts")
    inlines = [RunbookOptionInline]
