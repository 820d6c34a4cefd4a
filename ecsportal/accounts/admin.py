from __future__ import annotations

from django.contrib import admin

from ecsportal.accounts.models import AwsAccount, Membership


@admin.register(AwsAccount)
class AwsAccountAdmin(admin.ModelAdmin):
    """Read-mostly: edits go through the portal's own forms, which encrypt and audit."""

    list_display = ("name", "account_id", "credential_source", "role_arn", "is_enabled")
    exclude = ("secret_access_key_encrypted",)
    readonly_fields = ("credential_source", "access_key_id", "created_at", "updated_at")

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "account", "role")
    list_select_related = ("user", "account")
