from __future__ import annotations

from django import forms
from django.conf import settings

from ecsportal.accounts.models import AwsAccount, Role
from ecsportal.ui.validators import validate_no_bidi_controls


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        validators=[validate_no_bidi_controls],
        help_text="Where it is used, e.g. “laptop CLI” or “deploy job”.",
    )
    days = forms.IntegerField(label="Expires in (days)", min_value=1, initial=30)
    accounts = forms.ModelMultipleChoiceField(
        queryset=AwsAccount.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        help_text="The token reaches only these accounts.",
    )
    max_role = forms.TypedChoiceField(
        label="Role",
        coerce=int,
        initial=Role.VIEWER,
        help_text="At most this role, and never above your own on an account.",
    )

    def __init__(self, *args, accounts, roles: list[Role], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        limit = settings.ECSPORTAL_API_TOKEN_MAX_DAYS
        self.fields["days"].max_value = limit
        self.fields["days"].validators.append(forms.IntegerField(max_value=limit).validators[-1])
        self.fields["days"].widget.attrs.update({"min": 1, "max": limit})
        self.fields["days"].help_text = f"1 to {limit} days."
        self.fields["accounts"].queryset = accounts
        self.fields["max_role"].choices = [(r.value, r.label) for r in roles]
        self.fields["accounts"].widget.attrs["class"] = "form-check-input"
        for name, field in self.fields.items():
            if name != "accounts":
                field.widget.attrs.setdefault("class", "form-select" if name == "max_role" else "form-control")
