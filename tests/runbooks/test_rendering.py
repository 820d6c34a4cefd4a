"""The pure rendering: whatever a value holds, it is one literal argument where its placeholder stood."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecsportal.runbooks.rendering import (
    MASK,
    Kind,
    OptionSpec,
    TemplateError,
    ValueRefused,
    check_template,
    clean_value,
    name_matches,
    render_command,
)

TEXT = OptionSpec(name="value", required=False)
SECRET = OptionSpec(name="token", secret=True)
INJECTIONS = [
    "; rm -rf /",
    "$(id)",
    "`id`",
    "it's",
    'say "hi"',
    "a\nrm -rf /",
    "' ; echo pwned ; '",
    "--help",
    "*",
    "~root",
    "$HOME",
    "\\",
    "",
    "x" * 4096,
]
# Every character a value may hold: anything but control characters (tab and newline allowed).
VALUE = st.text(st.characters(exclude_categories=("Cc", "Cs")) | st.sampled_from("\t\n"), max_size=200)


@given(before=st.sampled_from(["printf '%s|'", "echo", "env X=1 cat --"]), value=VALUE)
def test_any_value_is_exactly_one_argument_where_its_placeholder_stood(before, value):
    command, shown = render_command(before + " {value} end", [TEXT], {"value": value})

    assert shlex.split(command) == [*shlex.split(before), value, "end"]
    assert shown == command


@given(first=VALUE, second=VALUE)
def test_two_values_stay_two_arguments_in_their_order(first, second):
    options = [OptionSpec(name="a"), OptionSpec(name="b")]
    command, _ = render_command("cp -- {a} {b} ; ls", options, {"a": first, "b": second})

    assert shlex.split(command) == ["cp", "--", first, second, ";", "ls"]


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_attempts_render_as_one_argument(value):
    command, _ = render_command("printf %s {value}", [TEXT], {"value": value})

    assert shlex.split(command) == ["printf", "%s", value]


@given(secret=st.text(min_size=1, max_size=50).filter(lambda s: MASK not in s))
def test_a_secret_appears_only_in_the_real_command(secret):
    command, shown = render_command("login --token {token}", [SECRET], {"token": secret})

    assert shlex.split(command) == ["login", "--token", secret]
    assert shown == f"login --token {shlex.quote(MASK)}"


def test_a_boolean_is_its_flag_when_on_and_nothing_when_off():
    follow = OptionSpec(name="follow", kind=Kind.BOOLEAN, flag="--follow")

    assert shlex.split(render_command("tail {follow} log", [follow], {"follow": True})[0]) == [
        "tail",
        "--follow",
        "log",
    ]
    assert shlex.split(render_command("tail {follow} log", [follow], {"follow": False})[0]) == ["tail", "log"]


def test_doubled_braces_and_other_braces_are_literal():
    command, _ = render_command("awk '{print $1}' {path} {{x}}", [OptionSpec(name="path")], {"path": "a b"})

    assert shlex.split(command) == ["awk", "{print $1}", "a b", "{x}"]


@pytest.mark.parametrize(
    "template",
    [
        "echo '{value}'",
        'echo "{value}"',
        "echo ${value}",
        "echo $'{value}'",
        "echo x{value}",
        "echo {value}x",
        "echo \\{value}",
        "cat <<EOF\n{value}\nEOF",
        "echo hi # {value}",
        "echo 'unclosed {value}",
    ],
)
def test_a_placeholder_where_quoting_cannot_hold_is_refused(template):
    problems = check_template(template, ["value"])

    assert problems and problems[0]
    with pytest.raises(TemplateError):
        render_command(template, [TEXT], {"value": "x"})


@pytest.mark.parametrize(
    "template", ["ls {value}", "ls --width={value}", "x=1;{value}|wc -l", "(cd /tmp && ls {value})", "ls >{value}"]
)
def test_a_placeholder_as_a_word_of_its_own_is_accepted(template):
    assert check_template(template, ["value"]) == []


def test_unknown_placeholders_and_unused_options_are_named():
    problems = check_template("ls {path} {depth}", ["path", "lines"])

    assert any("{depth}" in p for p in problems)
    assert any("lines" in p for p in problems)


@pytest.mark.parametrize(
    ("option", "raw", "message"),
    [
        (OptionSpec(name="n", kind=Kind.INTEGER), "12; id", "whole number"),
        (OptionSpec(name="n", kind=Kind.INTEGER, max_value=1000), "1001", "At most 1000"),
        (OptionSpec(name="n", kind=Kind.INTEGER, min_value=1), "0", "At least 1"),
        (OptionSpec(name="p", pattern=r"/var/log/[a-z]+\.log"), "/var/log/app.log; id", "Not in the form “p” accepts"),
        (OptionSpec(name="p", pattern=r"[a-z]+"), "abc\n", "Not in the form “p” accepts"),
        (OptionSpec(name="c", kind=Kind.CHOICE, choices=("a", "b")), "c", "Pick one of"),
        (OptionSpec(name="t"), "", "required"),
        (OptionSpec(name="t"), "a\x00b", r"U\+0000"),
        (OptionSpec(name="t"), "a\x1b[2Jb", r"U\+001B"),
        (OptionSpec(name="t"), "a\rb", r"U\+000D"),
        (OptionSpec(name="t"), "evil\u202etxt", r"U\+202E"),
        (OptionSpec(name="t"), "x" * 4097, "At most 4096"),
    ],
)
def test_values_that_do_not_fit_their_option_are_refused_with_a_reason(option, raw, message):
    with pytest.raises(ValueRefused, match=message):
        clean_value(option, raw)


def test_values_that_fit_are_typed():
    assert clean_value(OptionSpec(name="n", kind=Kind.INTEGER), " 42 ") == 42
    assert clean_value(OptionSpec(name="b", kind=Kind.BOOLEAN), "on") is True
    assert clean_value(OptionSpec(name="b", kind=Kind.BOOLEAN), None) is False
    assert clean_value(OptionSpec(name="t", required=False), "") is None
    assert clean_value(OptionSpec(name="t"), "two\nlines\tok") == "two\nlines\tok"


def test_name_patterns_are_globs_and_empty_matches_everything():
    assert name_matches("", "anything")
    assert name_matches("prod-*", "prod-web")
    assert not name_matches("prod-*", "staging")
    assert name_matches("staging, prod-*", "staging")
    assert not name_matches("app", "App")
