"""The one validator every name, reason and comment field uses against bidi controls."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from ecsportal.ui.validators import BIDI_CONTROLS, validate_no_bidi_controls

# Every control the issue lists, by code point, so the set cannot silently shrink.
LISTED = [0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069, 0x200E, 0x200F, 0x061C]


@pytest.mark.parametrize("code_point", LISTED)
def test_each_bidi_control_is_refused_and_named(code_point):
    with pytest.raises(ValidationError) as refused:
        validate_no_bidi_controls(f"prod{chr(code_point)}210987654321")
    assert f"U+{code_point:04X}" in refused.value.messages[0]
    assert "Remove them" in refused.value.messages[0]


def test_the_set_is_exactly_the_listed_controls():
    assert {ord(c) for c in BIDI_CONTROLS} == set(LISTED)


@pytest.mark.parametrize("text", ["Acme Production", "Ünïcödé ok", "שלום עולם", "مرحبا", "emoji 🚀", "", "a\u200db"])
def test_ordinary_text_in_any_script_passes(text):
    validate_no_bidi_controls(text)  # right-to-left letters are text, not controls
