"""Form pieces shared by every list page's filters.

A list page's query string is a filter, not a submission: a bad value (a stale link, a crafted
number, a digit that is not ASCII) is dropped on its own and the page opens with the rest.
"""

from __future__ import annotations

from typing import Any

from django import forms

# The largest value a 64-bit integer column holds; a larger number is "no such row", not an overflow.
MAX_ID = 2**63 - 1


class IdField(forms.IntegerField):
    """A row ID from the query string: optional, positive, and one the database can compare."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


def valid_filters(form: forms.Form) -> dict[str, Any]:
    """The fields of a filter form that are valid, each on its own; invalid ones are left out."""
    if not form.is_bound:
        return {}
    form.is_valid()
    return {name: value for name, value in form.cleaned_data.items() if value not in (None, "")}
