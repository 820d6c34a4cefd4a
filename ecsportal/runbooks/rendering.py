"""Runbook templates and values: parsing, validation and shell-quoting. Pure Python, no Django.

A template is a POSIX shell command with `{name}` placeholders (lowercase names); `{{` and `}}`
are literal braces, any other brace is literal too (so `awk '{print $1}'` needs no escaping).
Each placeholder must stand as a whole, unquoted shell word: after the start, whitespace, or
one of `; & | ( < > =`, and before the end, whitespace, or one of `; & | ) < >`. Anywhere else
(inside quotes, after `$`, glued to other text, in a here-document) quoting could not hold, so
such a template is refused when it is saved, not when it is run.

Values are validated against their option (type, required, choices, integer bounds, a regex
pattern that must match the whole value), then passed through `shlex.quote`: a value is always
exactly one argument of the command where its placeholder stood, whatever it contains. A
boolean option is its flag when on and nothing at all when off (or `true`/`false` without a
flag). Text values are kept as typed (spaces count); integers and choices are stripped.

Characters: at most 4,096 per value; tab and newline are allowed (harmless inside a quoted
argument, and how a multi-line value is written); every other control character (C0, DEL, C1,
so NUL and ESC) and the bidirectional overrides are refused: they would end the argument in C,
drive the terminal, or make the shown command read differently from the one that runs.

What a command does with its arguments is the template's meaning: `sh -c {x}` or `eval {x}`
runs `x` by design. Review templates as code.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

MASK = "••••••"
MAX_VALUE_LENGTH = 4096
NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,49}")
_TOKEN_RE = re.compile(r"\{\{|\}\}|\{([a-z][a-z0-9_]{0,49})\}")
_BEFORE = set(" \t\n;&|(<>=")
_AFTER = set(" \t\n;&|)<>")
# Bidirectional overrides and isolates: they make a shown command read differently from what
# runs ("Trojan Source"), so no value may carry them.
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


class Kind:
    TEXT = "text"
    CHOICE = "choice"
    INTEGER = "integer"
    BOOLEAN = "boolean"


@dataclass(frozen=True)
class OptionSpec:
    """What rendering needs to know of one option (the model's fields, as plain data)."""

    name: str
    kind: str = Kind.TEXT
    label: str = ""
    required: bool = True
    default: str = ""
    pattern: str = ""
    choices: tuple[str, ...] = ()
    secret: bool = False
    flag: str = ""
    min_value: int | None = None
    max_value: int | None = None
    max_length: int = MAX_VALUE_LENGTH

    @property
    def title(self) -> str:
        return self.label or self.name


class TemplateError(ValueError):
    """The template cannot be used as written; the message says where and why."""


class ValueRefused(ValueError):
    """A value does not fit its option; the message says what would."""


class PatternRefused(ValueRefused):
    """A text value does not match its option's pattern. The message names the option, not the
    regular expression: operators read it (and screen readers spell it out), and a regex says
    little to either; the option's hint is where its form is explained in words."""


@dataclass(frozen=True)
class Parsed:
    parts: tuple[str | tuple[str], ...]  # literal text, or (placeholder name,)
    names: tuple[str, ...] = field(default=())  # in order of first use


def _quote_state(text: str) -> str:
    """The shell state at the end of `text`: "" (unquoted), "'", '"', "\\" (escaped) or "#" (comment).

    A comment matters: quoting means nothing there, so a value with a newline would end the
    comment and run as a command.
    """
    state = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if state == "#":
            if ch == "\n":
                state = ""
        elif state == "'":
            if ch == "'":
                state = ""
        elif state == '"':
            if ch == "\\":
                i += 1
            elif ch == '"':
                state = ""
        elif ch == "\\":
            if i + 1 == len(text):
                return "\\"
            i += 1
        elif ch in "'\"":
            state = ch
        elif ch == "#" and (i == 0 or text[i - 1] in _BEFORE):
            state = "#"
        i += 1
    return state


def parse_template(template: str) -> Parsed:
    """Split a template into literal text and placeholders; TemplateError if one is unsafe."""
    if not template.strip():
        raise TemplateError("The command template is empty.")
    if "\x00" in template:
        raise TemplateError("The command template contains a NUL character.")
    if "<<" in template:
        raise TemplateError("Here-documents (<<) are not allowed: a value inside one would be expanded by the shell.")
    parts: list[str | tuple[str]] = []
    names: list[str] = []
    literal = ""
    pos = 0
    for match in _TOKEN_RE.finditer(template):
        literal += template[pos : match.start()]
        pos = match.end()
        if match.group(0) in ("{{", "}}"):
            literal += match.group(0)[0]
            continue
        name = match.group(1)
        before = template[match.start() - 1] if match.start() else " "
        after = template[match.end()] if match.end() < len(template) else " "
        where = f"{{{name}}} (at character {match.start() + 1})"
        if _quote_state(literal):
            raise TemplateError(
                f"{where} is inside quotes, a comment or after a backslash; write it unquoted, the portal quotes it."
            )
        if before not in _BEFORE or after not in _AFTER:
            raise TemplateError(
                f"{where} must stand as a word of its own (spaces or ; & | ( ) < > = around it), "
                "so its value cannot merge with the text next to it."
            )
        if literal:
            parts.append(literal)
            literal = ""
        parts.append((name,))
        if name not in names:
            names.append(name)
    literal += template[pos:]
    if _quote_state(literal) in ("'", '"', "\\"):
        raise TemplateError("The command template has an unclosed quote or ends with a backslash.")
    if literal:
        parts.append(literal)
    return Parsed(parts=tuple(parts), names=tuple(names))


def check_template(template: str, option_names: Sequence[str]) -> list[str]:
    """Every problem of a template with these options, as sentences (empty: fine)."""
    try:
        parsed = parse_template(template)
    except TemplateError as exc:
        return [str(exc)]
    problems = []
    unknown = [n for n in parsed.names if n not in option_names]
    unused = [n for n in option_names if n not in parsed.names]
    if unknown:
        problems.append("No option for " + ", ".join(f"{{{n}}}" for n in unknown) + ": add it or fix the name.")
    if unused:
        problems.append("Option " + ", ".join(unused) + " is not used in the template: add {name} or remove it.")
    return problems


def _check_characters(value: str, option: OptionSpec) -> None:
    if len(value) > option.max_length:
        raise ValueRefused(f"At most {option.max_length} characters (this is {len(value)}).")
    refuse_control_characters(value)


def refuse_control_characters(value: str) -> None:
    """ValueRefused for C0/C1 controls, DEL and bidi overrides; tab and newline pass (see module doc)."""
    for ch in value:
        if ch in "\t\n":
            continue  # harmless inside a quoted argument; a newline is how multi-line values are written
        if unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI:
            raise ValueRefused(f"Control characters are not allowed (found U+{ord(ch):04X}).")


def clean_value(option: OptionSpec, raw: object) -> str | bool | int | None:
    """The typed value of one option from what was submitted, or ValueRefused saying why.

    `None` means "left empty" (allowed only for options that are not required).
    """
    if option.kind == Kind.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        return str(raw or "").strip().lower() in ("1", "true", "on", "yes")
    value = "" if raw is None else str(raw)
    if option.kind != Kind.TEXT:
        value = value.strip()
    if value == "":
        if option.required:
            raise ValueRefused("This value is required.")
        return None
    _check_characters(value, option)
    if option.kind == Kind.INTEGER:
        if not re.fullmatch(r"[+-]?\d{1,18}", value):
            raise ValueRefused("Enter a whole number.")
        number = int(value)
        if option.min_value is not None and number < option.min_value:
            raise ValueRefused(f"At least {option.min_value}.")
        if option.max_value is not None and number > option.max_value:
            raise ValueRefused(f"At most {option.max_value}.")
        return number
    if option.kind == Kind.CHOICE:
        if value not in option.choices:
            raise ValueRefused("Pick one of: " + ", ".join(option.choices) + ".")
        return value
    if option.pattern and not re.fullmatch(option.pattern, value):
        raise PatternRefused(f"Not in the form “{option.title}” accepts.")
    return value


def _word(option: OptionSpec, value: object) -> tuple[str, str]:
    """(real, shown) text that replaces one placeholder."""
    if option.kind == Kind.BOOLEAN:
        word = shlex.quote(option.flag) if value and option.flag else ("" if option.flag else str(bool(value)).lower())
        return word, word
    text = "" if value is None else str(value)
    quoted = shlex.quote(text)
    return quoted, (shlex.quote(MASK) if option.secret else quoted)


def render_command(template: str, options: Sequence[OptionSpec], values: Mapping[str, object]) -> tuple[str, str]:
    """(command, shown_command): the template with every placeholder replaced by its quoted value.

    `values` are cleaned values (see `clean_value`); secrets appear only in the first result.
    Raises TemplateError for a template that does not match its options.
    """
    by_name = {o.name: o for o in options}
    problems = check_template(template, list(by_name))
    if problems:
        raise TemplateError(" ".join(problems))
    real: list[str] = []
    shown: list[str] = []
    for part in parse_template(template).parts:
        if isinstance(part, str):
            real.append(part)
            shown.append(part)
        else:
            option = by_name[part[0]]
            word, masked = _word(option, values.get(option.name))
            real.append(word)
            shown.append(masked)
    return "".join(real), "".join(shown)


def name_matches(pattern: str, name: str) -> bool:
    """An fnmatch-style glob, case-sensitive as ECS names are; several globs may be comma-separated; empty matches all."""
    globs = [g.strip() for g in (pattern or "").split(",") if g.strip()]
    return not globs or any(fnmatchcase(name, g) for g in globs)
