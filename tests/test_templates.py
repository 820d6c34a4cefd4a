"""Template hygiene that a browser would show as stray text."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_template_comment_spans_lines():
    """Django's {# … #} ends at the line end; a comment continued on the next line is printed on the page."""
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in (ROOT / "templates").rglob("*.html")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "{#" in line and "#}" not in line[line.index("{#") :]
    ]
    assert offenders == []
