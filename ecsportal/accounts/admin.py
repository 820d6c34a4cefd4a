from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import transaction

from ecsportal.accounts.models import AwsAccount, Membership
from ecsportal.audit.services import audit_record, client_ip
from ecsportal.ui.readonly_admin import ReadOnlyAdmin


# Accounts and memberships are view only here: an edit would bypass the audit trail and the
# account admins' connection lock.
@admin.register(AwsAccount)
class AwsAccountAdmin(ReadOnlyAdmin):
    list_display = ("name", "account_id", "credential_source", "role_arn", "is_enabled")
    exclude = ("secret_access_key_encrypted",)


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ("user", "account", "role")
    list_select_related = ("user", "account")


class AuditedAdminMixin:
    """Portal users and groups are managed in the Django admin; each addition, change (password
    included) and deletion is audited where the admin writes its own log entry, in the same
    transaction as the change. Only field names are recorded, never values."""

    audit_prefix = ""

    def _audit(self, request, verb: str, obj, message: object = None) -> None:
        details = {"change": message} if isinstance(message, list) else {}
        audit_record(
            actor=request.user,
            action=f"{self.audit_prefix}.{verb}",
            target=str(obj)[:512],
            details=details,
            source_ip=client_ip(request),
        )

    def log_addition(self, request, obj, message):
        self._audit(request, "created", obj, message)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._audit(request, "changed", obj, message)
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._audit(request, "deleted", obj)
        return super().log_deletions(request, queryset)


class AuditedUserAdmin(AuditedAdminMixin, UserAdmin):
    audit_prefix = "user"


class AuditedGroupAdmin(AuditedAdminMixin, GroupAdmin):
    audit_prefix = "group"


for _model, _admin in ((get_user_model(), AuditedUserAdmin), (Group, AuditedGroupAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)


_admin_password_change = admin.site.password_change


def _audited_password_change(request, extra_context=None):
    """The admin's "change my password" page, audited like every other change of a user."""
    with transaction.atomic():
        response = _admin_password_change(request, extra_context)
        if request.method == "POST" and response.status_code == 302:
            audit_record(
                actor=request.user,
                action="user.password_changed",
                target=request.user.get_username(),
                source_ip=client_ip(request),
            )
    return response


admin.site.password_change = _audited_password_change
