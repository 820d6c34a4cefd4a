"""Reading a run in a real browser (Playwright + Chromium against `manage.py demo`): the elapsed
time, Find, copy, output past the scrollback, the htmx form and the phone layout."""

from __future__ import annotations

import re

from tests.runs.test_browser import BUFFER, _pick, _start, _wait_for_text, _wait_until_finished

SHOTS = "/tmp/shots-runsux"


def _errors(page) -> list[str]:
    """Console errors, but for Chromium's own note of a form error's 422 answer (expected here)."""
    errors: list[str] = []
    expected = "the server responded with a status of 422"
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and expected not in m.text else None)
    return errors


def _find(page, needle: str) -> str:
    """Type into Find and return the count it shows, once it answers for this needle."""
    page.fill("#run-search", needle)
    page.wait_for_function(
        "needle => document.getElementById('run-find-status').getAttribute('data-needle') === needle", arg=needle
    )
    return page.locator("#run-find-status").inner_text()


def test_a_running_runs_duration_counts_between_status_changes(page_as, demo_server):
    page = page_as("operator")
    errors = _errors(page)
    _start(page, demo_server, "echo started; sleep 3; echo finished")
    _wait_for_text(page, "started")
    page.wait_for_selector("#run-facts[data-status='running'] #run-duration[data-ticking='1']")
    page.evaluate(
        "() => { window.shownDuration = document.getElementById('run-duration'); window.firstText = window.shownDuration.textContent; }"
    )
    # The same element (no re-render from a status change) shows a later time.
    page.wait_for_function(
        "() => window.shownDuration.isConnected && window.shownDuration.textContent !== window.firstText"
    )
    assert re.fullmatch(r"\d+\u00a0s so far", page.evaluate("() => window.shownDuration.textContent"))
    _wait_until_finished(page)
    assert "so far" not in page.locator("#run-duration").inner_text()
    assert errors == []


def test_find_counts_matches_and_says_when_there_is_none(page_as, demo_server):
    page = page_as("operator")
    errors = _errors(page)
    _start(page, demo_server, "echo apple; echo banana apple; echo cherry")
    _wait_until_finished(page)
    _wait_for_text(page, "cherry")
    assert page.locator("#run-scrollback-note").is_hidden()  # a short run: nothing was dropped
    assert _find(page, "apple") == "1 of 2"
    page.press("#run-search", "Enter")
    assert page.locator("#run-find-status").inner_text() == "2 of 2"
    assert _find(page, "durian") == "no match"
    page.click("h1")
    page.keyboard.press("/")  # "/" focuses Find
    assert page.evaluate("() => document.activeElement.id") == "run-search"
    assert errors == []


def test_copy_takes_the_selection_or_everything_shown_and_ctrl_c_alone_takes_nothing(page_as, demo_server):
    page = page_as("operator")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=demo_server)
    errors = _errors(page)
    _start(page, demo_server, "echo first-line; echo second-line")
    _wait_until_finished(page)
    _wait_for_text(page, "second-line")
    clipboard = "() => navigator.clipboard.readText()"
    page.evaluate("() => navigator.clipboard.writeText('before')")

    page.click("#run-terminal")
    page.evaluate("() => window.ecsportalRun.term.clearSelection()")
    page.keyboard.press("Control+c")  # nothing selected: nothing copied (and nothing sent: read-only)
    assert page.evaluate(clipboard) == "before"

    row = page.evaluate(f"() => ({BUFFER})().split('\\n').findIndex(l => l.startsWith('first-line'))")
    page.evaluate(f"() => window.ecsportalRun.term.select(0, {row}, 10)")
    page.keyboard.press("Control+c")
    page.wait_for_function(f"async () => (await ({clipboard})()) === 'first-line'")

    page.evaluate(f"() => window.ecsportalRun.term.select(0, {row + 1}, 11)")
    page.keyboard.press("Control+Shift+C")
    page.wait_for_function(f"async () => (await ({clipboard})()) === 'second-line'")

    page.evaluate("() => window.ecsportalRun.term.clearSelection()")
    page.click("#run-copy")
    page.wait_for_function(f"async () => (await ({clipboard})()).includes('first-line\\nsecond-line')")
    page.wait_for_selector("#run-copy:text-is('Copied')")
    assert errors == []


def test_output_past_the_scrollback_is_announced_and_find_searches_all_of_it(page_as, demo_server):
    page = page_as("operator")
    errors = _errors(page)
    _start(page, demo_server, "seq -f 'line-%g-end' 1 40000")
    _wait_until_finished(page)
    page.wait_for_function("() => window.ecsportalRun.state.renderedSeq === window.ecsportalRun.state.lastSeq")
    page.wait_for_selector("#run-scrollback-note:not([hidden])")
    assert "line-1-end" not in page.evaluate(BUFFER)  # xterm dropped it
    assert _find(page, "line-1-end") == "none shown · 1 earlier, only in the transcript"
    assert page.locator("#run-find-earlier .run-find-line").all_inner_texts() == ["line 1: line-1-end"]
    assert _find(page, "line-39999-end").startswith("1 ")
    assert _find(page, "line-0-end") == "no match"
    page.screenshot(path=f"{SHOTS}/run-scrollback.png")
    assert errors == []


def test_the_form_answers_in_place_and_a_production_reason_is_asked_for_before_submitting(page_as, demo_server):
    page = page_as("operator")
    errors = _errors(page)
    page.goto(f"{demo_server}/runs/new/")
    page.evaluate("() => { window.samePage = true; }")
    _pick(page, account="Acme Production", region="eu-west-1", cluster="prod-web")
    assert "(required)" in page.locator("#run-reason-label").inner_text()
    page.fill("#run-command", "uptime # kept")
    page.click("#run-submit")
    page.wait_for_selector("#run-form-error")
    assert "say why" in page.locator("#run-form-error").inner_text()
    assert page.evaluate("() => window.samePage") is True  # swapped in place, not a new page
    assert page.input_value("#run-command") == "uptime # kept"
    assert page.input_value("#pick-container") == "app"
    page.screenshot(path=f"{SHOTS}/run-form-error.png", full_page=True)
    page.fill("#run-reason", "load looks high")
    page.click("#run-submit")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))  # HX-Redirect
    assert page.locator("#run-status .badge").inner_text() == "Awaiting approval"
    # Withdrawn by its requester: the request leaves the approvers' inboxes (and this shared demo's).
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#run-cancel")
    _wait_until_finished(page)
    assert "withdrawn" in page.locator("#run-end-reason").inner_text()
    assert errors == []


def test_on_a_phone_status_and_exit_code_come_before_the_terminal(page_as, demo_server):
    page = page_as("operator")
    errors = _errors(page)
    _start(page, demo_server, "echo phone; exit 4")
    _wait_until_finished(page)
    page.set_viewport_size({"width": 320, "height": 800})
    page.wait_for_selector("#run-strip .run-status[data-status='failed']")
    strip = page.locator("#run-strip").bounding_box()
    terminal = page.locator("#run-terminal").bounding_box()
    assert page.locator("#run-strip").is_visible() and strip["y"] + strip["height"] <= terminal["y"]
    assert "4" in page.locator("#run-strip .exit-code").inner_text()
    page.screenshot(path=f"{SHOTS}/run-phone.png", full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})
    assert page.locator("#run-strip").is_hidden()  # beside the facts, it would say it twice
    page.screenshot(path=f"{SHOTS}/run-desktop.png", full_page=True)
    assert errors == []


def test_the_history_fits_1400_px_with_a_long_command_and_a_raw_mode_run(page_as, demo_server):
    page = page_as("operator")
    _start(page, demo_server, "echo " + "a-long-argument " * 40)
    _wait_until_finished(page)
    page.goto(f"{demo_server}/runs/new/")
    _pick(page, account="Acme Staging", region="eu-west-1", cluster="staging")
    page.fill("#run-command", "echo raw")
    page.check("#run-raw")
    page.click("#run-submit")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    _wait_until_finished(page)
    assert page.locator("#run-status .badge").inner_text() == "Completed"

    page.goto(f"{demo_server}/runs/")
    table = page.locator("#run-results .table-responsive")
    assert table.evaluate("t => t.scrollWidth <= t.clientWidth")  # no column (Bytes) pushed out of view
    unknown = page.locator(".run-row td span", has_text="exit code unknown (raw mode)").first
    assert unknown.evaluate("e => e.getClientRects().length") == 1  # one line, not three or four
    page.screenshot(path=f"{SHOTS}/runs-history.png", full_page=True)
