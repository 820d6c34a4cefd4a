from __future__ import annotations

from django import forms
from django.core.validators import RegexValidator

from ecsportal.ui.forms import IdField

_NAME = RegexValidator(r"^[A-Za-z0-9_-]{1,255}$", "Not a valid name.")


class PickerForm(forms.Form):
    """The cascading picker's choices from the query string (the parameter names are its embedding
    interface: account, region, cluster, task, container). A bad value is dropped, never fatal;
    whether a choice fits the level above it is the selector's business."""

    account = IdField()
    region = forms.CharField(required=False, max_length=32, validators=[RegexValidator(r"^[a-z0-9-]+$")])
    cluster = forms.CharField(required=False, max_length=255, validators=[_NAME])
    task = forms.CharField(required=False, max_length=64, validators=[_NAME])
    container = forms.CharField(required=False, max_length=255)
