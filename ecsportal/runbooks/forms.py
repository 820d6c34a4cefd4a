from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError

from ecsportal.runbooks.models import Runbook, RunbookOption
from ecsportal.runbooks.rendering import (
    NAME_RE,
    Kind,
    OptionSpec,
    PatternRefused,
    ValueRefused,
    check_template,
    clean_value,
    refuse_control_characters,
)
from ecsportal.runbooks.selectors import manageable_accounts, target_allowed

_OPT = "opt_"  # prefix of the generated option fields, so they never clash with the picker's


class _Styled:
    """Bootstrap classes on every widget, and `is-invalid` on those with errors after cleaning."""

    def _style(self) -> None:
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput | forms.CheckboxSelectMultiple | forms.HiddenInput):
                continue
            base = "form-select form-select-sm" if isinstance(widget, forms.Select) else "form-control form-control-sm"
            widget.attrs["class"] = f"{base} {widget.attrs.get('class', '')}".strip()

    def full_clean(self) -> None:
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()


class RunbookForm(_Styled, forms.ModelForm):
    class Meta:
        model = Runbook
        fields = [
            "name",
            "description",
            "accounts",
            "cluster_pattern",
            "container_pattern",
            "command_template",
            "mode",
            "needs_approval",
            "is_enabled",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "command_template": forms.Textarea(attrs={"rows": 3, "class": "mono", "spellcheck": "false"}),
            "accounts": forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
        }
        help_texts = {"accounts": "Operators of these accounts may run it. You can pick accounts you administer."}

    def __init__(self, *args: Any, user: AbstractBaseUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["accounts"].queryset = manageable_accounts(user=user)
        self.fields["accounts"].error_messages["required"] = "Pick at least one account it may run on."
        self._style()


class RunbookOptionForm(_Styled, forms.ModelForm):
    choices_text = forms.CharField(
        required=False,
        label="Choices (one per line)",
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
    )

    class Meta:
        model = RunbookOption
        fields = [
            "name",
            "label",
            "kind",
            "help_text",
            "required",
            "default",
            "pattern",
            "choices_text",
            "min_value",
            "max_value",
            "flag",
            "secret",
            "position",
        ]
        widgets = {"position": forms.HiddenInput}
        labels = {"min_value": "Min", "max_value": "Max", "flag": "Flag when on"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["choices_text"] = "\n".join(self.instance.choices or [])
        self.fields["position"].required = False
        self.fields["name"].required = False  # an empty row is skipped; a row with a name is an option
        self._style()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("name") or self.has_error("name"):
            return data
        if not NAME_RE.fullmatch(data["name"]):
            self.add_error("name", "Lowercase letters, digits and _, starting with a letter (as in {name}).")
        kind = data.get("kind")
        choices = [c.strip() for c in (data.get("choices_text") or "").splitlines() if c.strip()]
        data["choices"] = choices if kind == Kind.CHOICE else []
        if kind == Kind.CHOICE and not choices:
            self.add_error("choices_text", "A choice option needs at least one value, one per line.")
        for name, texts in (("choices_text", choices), ("flag", [data.get("flag") or ""])):
            try:
                for text in texts:
                    refuse_control_characters(text)
            except ValueRefused as exc:
                self.add_error(name, str(exc))
        if data.get("secret") and kind != Kind.TEXT:
            self.add_error("secret", "Only text options can be secret.")
        if data.get("secret") and data.get("default"):
            self.add_error("default", "A secret has no default: it would be stored in clear.")
        if kind == Kind.BOOLEAN and data.get("required"):
            data["required"] = False  # a flag is on or off; "required" means nothing for it
        if data.get("pattern"):
            try:
                re.compile(data["pattern"])
            except re.error as exc:
                self.add_error("pattern", f"Not a valid regular expression: {exc}.")
        low, high = data.get("min_value"), data.get("max_value")
        if low is not None and high is not None and low > high:
            self.add_error("max_value", "The maximum is below the minimum.")
        if data.get("default") and not self.errors:
            try:
                clean_value(_spec(data), data["default"])
            except PatternRefused:
                self.add_error("default", "The default does not match the pattern.")
            except ValueRefused as exc:
                self.add_error("default", f"The default does not fit the option: {exc}")
        return data

    def save(self, commit: bool = True) -> RunbookOption:
        self.instance.choices = self.cleaned_data.get("choices", [])
        return super().save(commit=commit)


def _spec(data: dict[str, Any]) -> OptionSpec:
    return OptionSpec(
        name=data.get("name") or "",
        kind=data.get("kind") or Kind.TEXT,
        required=bool(data.get("required")),
        pattern=data.get("pattern") or "",
        choices=tuple(data.get("choices") or ()),
        flag=data.get("flag") or "",
        min_value=data.get("min_value"),
        max_value=data.get("max_value"),
    )


class _BaseOptionFormSet(forms.BaseInlineFormSet):
    """Repeated names are refused by the formset's own unique check (one name per runbook)."""

    def kept_forms(self) -> list[forms.Form]:
        return [
            f
            for f in self.forms
            if getattr(f, "cleaned_data", None) and not f.cleaned_data.get("DELETE") and f.cleaned_data.get("name")
        ]


# The formset builds as many forms as the posted TOTAL_FORMS says, up to absolute_max (2,000 by
# default: a 400-digit count took seconds and rendered 9.4 MB); past MAX_OPTIONS it is a form error.
MAX_OPTIONS = 30

OptionFormSet = forms.inlineformset_factory(
    Runbook,
    RunbookOption,
    form=RunbookOptionForm,
    formset=_BaseOptionFormSet,
    extra=2,
    can_delete=True,
    max_num=MAX_OPTIONS,
    absolute_max=MAX_OPTIONS,
    validate_max=True,
)


def validate_runbook(form: RunbookForm, formset: forms.BaseInlineFormSet) -> bool:
    """Both valid, and the template's placeholders exactly the options' names."""
    if not (form.is_valid() and formset.is_valid()):
        return False
    names = [f.cleaned_data["name"] for f in formset.kept_forms()]
    for problem in check_template(form.cleaned_data["command_template"], names):
        form.add_error("command_template", problem)
    return not form.errors


def _option_field(spec: OptionSpec, help_text: str) -> forms.Field:
    common: dict[str, Any] = {"label": spec.title, "help_text": help_text, "required": False}
    if spec.kind == Kind.BOOLEAN:
        return forms.BooleanField(initial=spec.default.lower() in ("1", "true", "on", "yes"), **common)
    # Plain fields: the one validation is `clean_value` on what was sent (RunbookRunForm.clean),
    # the same function whatever the kind, so a value is never judged by two sets of rules.
    if spec.kind == Kind.CHOICE:
        empty = [] if spec.required and spec.default else [("", "— choose —")]
        widget: forms.Widget = forms.Select(choices=empty + [(c, c) for c in spec.choices])
    elif spec.kind == Kind.INTEGER:
        attrs = {k: v for k, v in (("min", spec.min_value), ("max", spec.max_value)) if v is not None}
        widget = forms.NumberInput(attrs=attrs)
    elif spec.secret:
        widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"})
    else:
        widget = forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"})
    if spec.required:
        widget.attrs["required"] = True
    return forms.Field(initial="" if spec.secret else spec.default, widget=widget, **common)


class RunbookRunForm(_Styled, forms.Form):
    """One typed field per option, the target (picker fields) and, when approval is needed, why."""

    account = forms.IntegerField(required=False)
    region = forms.CharField(required=False, max_length=32)
    cluster = forms.CharField(required=False, max_length=255)
    task = forms.CharField(required=False, max_length=64)
    container = forms.CharField(required=False, max_length=255)
    reason = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Shown to approvers.",
    )

    def __init__(self, *args: Any, runbook: Runbook, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.runbook = runbook
        self.options = list(runbook.options.all())
        self.specs = [o.spec() for o in self.options]
        for option, spec in zip(self.options, self.specs, strict=True):
            self.fields[_OPT + spec.name] = _option_field(spec, option.help_text)
        self._style()  # a missing reason is refused by the run service, only when the account's policy asks

    def option_fields(self) -> list[forms.BoundField]:
        return [self[_OPT + s.name] for s in self.specs]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        values: dict[str, object] = {}
        for option, spec in zip(self.options, self.specs, strict=True):
            raw = data.get(_OPT + spec.name) if spec.kind == Kind.BOOLEAN else self.data.get(_OPT + spec.name)
            try:
                values[spec.name] = clean_value(spec, raw)
            except PatternRefused as exc:
                where = (
                    "the hint below says what it takes" if option.help_text else "ask the runbook's owner what it takes"
                )
                self.add_error(_OPT + spec.name, f"{exc} Check the value; {where}.")
            except ValueRefused as exc:
                self.add_error(_OPT + spec.name, str(exc))
        data["values"] = values
        if data.get("account") is None or not all(data.get(k) for k in ("region", "cluster", "task", "container")):
            raise ValidationError("Pick the account, region, cluster, task and container to run it in.")
        refused = target_allowed(runbook=self.runbook, cluster=data["cluster"], container=data["container"])
        if refused:
            raise ValidationError(refused)
        if data["account"] not in {a.pk for a in self.runbook.accounts.all()}:
            raise ValidationError(f"“{self.runbook.name}” does not run on that account.")
        return data
