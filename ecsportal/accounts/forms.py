from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator

from ecsportal.accounts import validators as v
from ecsportal.accounts.models import SHELL_COMMAND_AUTO, AwsAccount, CredentialSource, Role, ShellAccess
from ecsportal.ui.validators import validate_no_bidi_controls


def _split(text: str) -> list[str]:
    return [item for item in text.replace(",", " ").split() if item]


# How the portal reaches AWS. An account admin who could change these could point "their"
# account at any account the portal's identity reaches, so only superusers may.
CONNECTION_FIELDS = (
    "account_id",
    "credential_source",
    "access_key_id",
    "secret_access_key",
    "role_arn",
    "external_id",
    "allowed_role_arns",
)


class AccountForm(forms.Form):
    """Create or edit an account. The secret key is write-only: blank keeps the stored one."""

    name = forms.CharField(max_length=100, validators=[validate_no_bidi_controls])
    account_id = forms.CharField(label="Account ID", max_length=12, validators=[v.validate_account_id])
    regions = forms.CharField(
        help_text="Region codes, separated by spaces or commas, e.g. eu-west-1 us-east-1.", max_length=500
    )
    credential_source = forms.ChoiceField(choices=CredentialSource.choices, initial=CredentialSource.DEFAULT_CHAIN)
    access_key_id = forms.CharField(label="Access key ID", required=False, max_length=128)
    secret_access_key = forms.CharField(
        label="Secret access key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    role_arn = forms.CharField(label="Role ARN to assume", required=False, max_length=2048)
    external_id = forms.CharField(label="External ID", required=False, max_length=1224)
    session_name = forms.CharField(initial="ecsportal", max_length=64, validators=[v.validate_session_name])
    session_duration = forms.IntegerField(
        initial=3600, min_value=900, max_value=43200, help_text="Seconds, 900 to 43200."
    )
    allowed_role_arns = forms.CharField(
        label="Role ARNs users may pick instead",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line. Anything not listed here (or the default role) is refused.",
    )
    is_production = forms.BooleanField(required=False, label="Production account")
    approvals_for_stop = forms.IntegerField(
        label="Approvals to stop a task",
        initial=1,
        required=False,
        min_value=0,
        max_value=5,
        help_text="0 stops at once (audited).",
    )
    approvals_for_commands = forms.IntegerField(
        label="Approvals to run a free-form command",
        required=False,
        min_value=0,
        max_value=5,
        help_text="Blank: 1 on a production account, otherwise 0.",
    )
    approvals_for_runbooks = forms.IntegerField(
        label="Approvals for runbooks that ask for approval", initial=1, required=False, min_value=0, max_value=5
    )
    approval_ttl_minutes = forms.IntegerField(
        label="Requests expire after (minutes)", initial=60, required=False, min_value=5, max_value=7 * 24 * 60
    )
    shell_access = forms.ChoiceField(
        label="Interactive shells",
        required=False,
        choices=[("", "Default: access request on a production account, else allowed for operators")]
        + list(ShellAccess.choices),
    )
    approvals_for_shell = forms.IntegerField(
        label="Approvals for a shell access request",
        initial=1,
        required=False,
        min_value=0,
        max_value=5,
        help_text="0 grants a request at once (audited).",
    )
    shell_moderated = forms.BooleanField(
        required=False, label="Moderated shells: input only while an approver other than the owner watches"
    )
    shell_record_input = forms.BooleanField(
        required=False,
        label="Record what is typed into shells (a password typed at a prompt would be kept too)",
    )
    shell_command = forms.CharField(
        label="Shell command",
        initial=SHELL_COMMAND_AUTO,
        required=False,
        max_length=200,
        help_text="“auto”: bash when the image has it, else sh. Or a command such as /bin/ash -l.",
    )
    shell_idle_minutes = forms.IntegerField(
        label="End a shell after this many idle minutes", initial=15, required=False, min_value=1, max_value=240
    )
    shell_max_minutes = forms.IntegerField(
        label="Longest shell session (minutes)", initial=60, required=False, min_value=1, max_value=720
    )
    connection_locked = False

    def __init__(
        self, *args: Any, instance: AwsAccount | None = None, connection_locked: bool = False, **kwargs: Any
    ) -> None:
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": instance.name,
                "account_id": instance.account_id,
                "regions": " ".join(instance.regions),
                "credential_source": instance.credential_source,
                "access_key_id": instance.access_key_id,
                "role_arn": instance.role_arn,
                "external_id": instance.external_id,
                "session_name": instance.session_name,
                "session_duration": instance.session_duration,
                "allowed_role_arns": "\n".join(instance.allowed_role_arns),
                "is_production": instance.is_production,
                "approvals_for_stop": instance.approvals_for_stop,
                "approvals_for_commands": instance.approvals_for_commands,
                "approvals_for_runbooks": instance.approvals_for_runbooks,
                "approval_ttl_minutes": instance.approval_ttl_minutes,
                "shell_access": instance.shell_access,
                "approvals_for_shell": instance.approvals_for_shell,
                "shell_moderated": instance.shell_moderated,
                "shell_record_input": instance.shell_record_input,
                "shell_command": instance.shell_command,
                "shell_idle_minutes": instance.shell_idle_minutes,
                "shell_max_minutes": instance.shell_max_minutes,
            }
        super().__init__(*args, **kwargs)
        if instance is not None and instance.has_stored_secret:
            self.fields["secret_access_key"].help_text = "A secret is stored. Leave blank to keep it."
        else:
            self.fields["secret_access_key"].help_text = "Write-only: it is encrypted and never shown again."
        if connection_locked:
            for name in CONNECTION_FIELDS:
                self.fields[name].disabled = True  # Django keeps the stored value, whatever is posted
            self.connection_locked = True

    def _policy_or_current(self, name: str) -> int:
        """A blank policy field keeps what the account has (or the default for a new account)."""
        value = self.cleaned_data.get(name)
        if value is not None:
            return value
        return getattr(self.instance, name) if self.instance is not None else self.fields[name].initial

    def clean_approvals_for_stop(self) -> int:
        return self._policy_or_current("approvals_for_stop")

    def clean_approvals_for_runbooks(self) -> int:
        return self._policy_or_current("approvals_for_runbooks")

    def clean_approval_ttl_minutes(self) -> int:
        return self._policy_or_current("approval_ttl_minutes")

    def clean_approvals_for_shell(self) -> int:
        return self._policy_or_current("approvals_for_shell")

    def clean_shell_idle_minutes(self) -> int:
        return self._policy_or_current("shell_idle_minutes")

    def clean_shell_max_minutes(self) -> int:
        return self._policy_or_current("shell_max_minutes")

    def clean_shell_command(self) -> str:
        value = " ".join((self.cleaned_data.get("shell_command") or "").split())
        if not value:
            return self.instance.shell_command if self.instance is not None else SHELL_COMMAND_AUTO
        v.validate_shell_command(value)
        return value

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        others = AwsAccount.objects.filter(name__iexact=name)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise ValidationError("Another account already has this name.")
        return name

    def clean_regions(self) -> list[str]:
        regions = _split(self.cleaned_data["regions"])
        if not regions:
            raise ValidationError("Name at least one region.")
        errors = []
        for region in regions:
            try:
                v.validate_region(region)
            except ValidationError as exc:
                errors.extend(exc.messages)
        if errors:
            raise ValidationError(errors)
        partitions = {v.partition_for_region(r) for r in regions}
        if len(partitions) > 1:
            raise ValidationError("All regions of one account must be in the same partition.")
        return list(dict.fromkeys(regions))

    def clean_external_id(self) -> str:
        value = self.cleaned_data["external_id"].strip()
        if value:
            v.validate_external_id(value)
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        regions = data.get("regions") or []
        partition = v.partition_for_region(regions[0]) if regions else None
        account_id = data.get("account_id")
        if data.get("role_arn"):
            try:
                v.validate_role_arn(data["role_arn"].strip(), partition=partition, account_id=account_id)
                data["role_arn"] = data["role_arn"].strip()
            except ValidationError as exc:
                self.add_error("role_arn", exc)
        allowed = _split(data.get("allowed_role_arns") or "")
        for arn in allowed:
            try:
                v.validate_role_arn(arn, partition=partition, account_id=account_id)
            except ValidationError as exc:
                self.add_error("allowed_role_arns", exc)
        data["allowed_role_arns"] = list(dict.fromkeys(allowed))
        if data.get("credential_source") == CredentialSource.ACCESS_KEY:
            self._clean_keys(data)
        elif data.get("secret_access_key"):
            self.add_error("secret_access_key", "A secret key is only used with the stored-access-key source.")
        if data.get("external_id") and not data.get("role_arn"):
            self.add_error("external_id", "An External ID only applies when a role ARN is assumed.")
        idle, longest = data.get("shell_idle_minutes"), data.get("shell_max_minutes")
        if idle is not None and longest is not None and idle > longest:
            self.add_error(
                "shell_idle_minutes",
                f"The idle limit ({idle} min) cannot be longer than the longest session ({longest} min).",
            )
        return data

    def _clean_keys(self, data: dict[str, Any]) -> None:
        key_id = (data.get("access_key_id") or "").strip()
        if not key_id:
            self.add_error("access_key_id", "Enter the access key ID, or choose the portal's default chain.")
        else:
            try:
                v.validate_access_key_id(key_id)
                data["access_key_id"] = key_id
            except ValidationError as exc:
                self.add_error("access_key_id", exc)
        has_stored = self.instance is not None and self.instance.has_stored_secret
        if not data.get("secret_access_key") and not has_stored:
            self.add_error("secret_access_key", "Enter the secret access key that goes with this key ID.")


class MembershipForm(forms.Form):
    username = forms.CharField(max_length=150, validators=[validate_no_bidi_controls])
    role = forms.TypedChoiceField(choices=Role.choices, coerce=int, initial=Role.VIEWER)

    def clean_username(self) -> Any:
        username = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise ValidationError(f"No active user is called “{username}”.")
        return user


class RoleForm(forms.Form):
    role = forms.TypedChoiceField(choices=Role.choices, coerce=int)


class PortalLoginForm(AuthenticationForm):
    """Django's login form, refusing a username no user can have before anything queries it.

    AuthenticationForm sets the username field's max_length after the field is built, so the
    length is never validated: a longer name reached django-axes, whose 255-character column
    PostgreSQL refuses (a 500). A NUL fails the field, but PostgreSQL refuses it in any query,
    the failure's audit included. Both now get the page's one message for a wrong login.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["username"]
        field.validators.append(MaxLengthValidator(field.max_length))

    def clean(self) -> dict[str, Any]:
        if "username" in self.errors:  # never authenticated, so the throttle never sees it
            raise self.get_invalid_login_error()
        return super().clean()

    def checked_username(self) -> str:
        """The typed username once it passed the field's checks (safe to query), or ""."""
        return str(getattr(self, "cleaned_data", {}).get("username") or "")
