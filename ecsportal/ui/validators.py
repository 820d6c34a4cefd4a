"""Validators for text people type that other people read.

Unicode's bidirectional controls are invisible and reorder the text after them: an account
called "prod\u202e210987654321" shows its ID reversed, and a stop reason can make a page say
something it does not. Nothing legitimate in a name, a reason or a comment needs them, so
every form field shown to others refuses them (and templates isolate user text anyway).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

# Embeddings and overrides (LRE RLE PDF LRO RLO), isolates (LRI RLI FSI PDI), the LRM/RLM marks
# and the Arabic letter mark.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def validate_no_bidi_controls(value: object) -> None:
    if not isinstance(value, str):
        return
    found = sorted({f"U+{ord(ch):04X}" for ch in value if ch in BIDI_CONTROLS})
    if found:
        raise ValidationError(
            "This contains invisible text-direction characters (%(found)s) that make text display "
            "differently from what it says. Remove them (retype the text rather than pasting it) and try again.",
            code="bidi_control",
            params={"found": ", ".join(found)},
        )
