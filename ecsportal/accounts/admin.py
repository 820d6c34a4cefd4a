from __future__ import annotations

from django.contrib import admin

from ecsportal.accounts.models import AwsAccount, Membership


class ReadOnlyAdmin(admin.ModelAdmin):
    """View only: every change goes through the portal's services, which encrypt and audit it.

    An edit here would bypass the audit trail and the account admins' connection lock.
    """

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(AwsAccount)
class AwsAccountAdmin(ReadOnlyAdmin):
    list_display = ("name", "account_id", "credential_source", "role_arn", "is_enabled")
    exclude = ("secret_access_key_encrypted",)


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ("user", "account", "role")
    list_select_related = ("user", "account")
