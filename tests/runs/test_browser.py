"""The run pages in a real browser (Playwright + Debian's Chromium) against `manage.py demo`,
whose in-process runner executes commands in the SSM agent emulator.

The terminal is read through xterm.js's own buffer API, not pixels.
"""

from __future__ import annotations

import re
import time

from tests.conftest import screenshot

BUFFER = """() => {
  const run = window.ecsportalRun;
  if (!run || !run.term) { return ""; }
  const buffer = run.term.buffer.active;
  const lines = [];
  for (let i = 0; i < buffer.length; i++) { lines.push(buffer.getLine(i).translateToString(true)); }
  return lines.join("\\n");
}"""


def _console_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def _choose(page, select: str, value: str) -> None:
    page.wait_for_load_state("load")
    with page.expect_response(re.compile(r"/runs/pick/\?")):
        page.select_option(select, value=value)


def _pick(page, *, account: str, region: str, cluster: str) -> None:
    """An account, region and cluster, then its web task's container "app", through the picker."""
    value = page.locator("#pick-account option", has_text=account).get_attribute("value")
    _choose(page, "#pick-account", value)
    page.wait_for_selector("#pick-region:not([disabled])")
    _choose(page, "#pick-region", region)
    page.wait_for_selector("#pick-cluster:not([disabled])")
    _choose(page, "#pick-cluster", cluster)
    page.wait_for_selector("#pick-task:not([disabled])")
    task = page.locator("#pick-task option", has_text="web · web:").first.get_attribute("value")
    _choose(page, "#pick-task", task)
    page.wait_for_selector("#pick-container:not([disabled])")
    _choose(page, "#pick-container", "app")


def _start(page, base: str, command: str) -> None:
    page.goto(f"{base}/runs/new/")
    _pick(page, account="Acme Staging", region="eu-west-1", cluster="staging")
    page.fill("#run-command", command)
    page.click("#run-submit")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))


def _wait_for_text(page, text: str) -> None:
    page.wait_for_function(f"() => ({BUFFER})().includes({text!r})")


def _wait_until_finished(page) -> None:
    page.wait_for_selector("#run-facts[data-finished='1']")


def test_reloading_mid_run_still_shows_the_whole_transcript_once(page_as, demo_server):
    page = page_as("operator")
    errors = _console_errors(page)
    _start(page, demo_server, "echo first; sleep 2; echo second")
    _wait_for_text(page, "first")
    page.reload()
    _wait_for_text(page, "first")
    _wait_for_text(page, "second")
    _wait_until_finished(page)
    text = page.evaluate(BUFFER)
    assert text.count("first") == 1 and text.count("second") == 1
    assert page.locator("#run-exit").inner_text().strip() == "0"
    assert errors == [], f"browser console errors (a CSP violation?): {errors}"


def test_a_dropped_socket_reconnects_after_the_last_chunk_it_has(page_as, demo_server):
    page = page_as("operator")
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    _start(page, demo_server, "echo before; sleep 2; echo after")
    _wait_for_text(page, "before")
    seen = page.evaluate("() => window.ecsportalRun.state.lastSeq")
    page.evaluate("() => window.ecsportalRun.socket.close()")  # as a network drop would
    page.wait_for_selector("#run-connection[data-state='retrying']")
    _wait_for_text(page, "after")
    _wait_until_finished(page)
    text = page.evaluate(BUFFER)
    assert text.count("before") == 1 and text.count("after") == 1
    assert len(sockets) >= 2 and sockets[0].endswith("?after=0") and sockets[1].endswith(f"?after={seen}")


def test_the_facts_catch_up_when_two_status_changes_arrive_during_one_refresh(page_as, demo_server):
    # Two status messages close together (running, then succeeded): htmx drops the refresh
    # queued behind the one in flight once that one's swap replaces #run-facts. Here the first
    # refresh answers as the server would have a moment earlier ("running"); the page must
    # still end on what the socket said last.
    page = page_as("operator")
    _start(page, demo_server, "echo quick")
    _wait_until_finished(page)
    doctored: list[str] = []

    def an_earlier_answer(route):
        if doctored or route.request.headers.get("hx-request") != "true":
            route.continue_()
            return
        body = route.fetch().text()
        body = body.replace('data-status="succeeded"', 'data-status="running"').replace(
            'data-finished="1"', 'data-finished="0"'
        )
        doctored.append(body)
        route.fulfill(status=200, body=body, headers={"content-type": "text/html; charset=utf-8"})

    page.route(re.compile(r"/runs/\d+/$"), an_earlier_answer)
    page.evaluate(
        "() => { window.factSwaps = [];"
        " document.addEventListener('htmx:afterSettle', e => {"
        "   if (e.target.id === 'run-facts') { window.factSwaps.push(e.target.dataset.status); } });"
        " const run = window.ecsportalRun;"
        " run.onStatus({status: 'running', finished: false});"
        " run.onStatus({status: 'succeeded', finished: true}); }"
    )
    page.wait_for_function("() => window.factSwaps.length >= 2")
    assert doctored, "the first refresh was not the doctored one"
    assert page.evaluate("() => window.factSwaps") == ["running", "succeeded"]
    assert page.locator("#run-facts").get_attribute("data-finished") == "1"


def test_the_facts_catch_up_when_the_status_arrives_before_htmx_is_ready(page_as, demo_server):
    # A slow script holds DOMContentLoaded back, so the socket's "succeeded" arrives before
    # htmx has wired the page: a trigger then reaches no listener. The facts are made to say
    # what a page rendered a moment earlier would ("connecting") just before htmx wires the
    # page; the page must still end on "succeeded".
    page = page_as("operator")
    _start(page, demo_server, "echo quick")
    _wait_until_finished(page)
    page.add_init_script(
        "document.addEventListener('DOMContentLoaded', () => {"
        " window.statusBeforeReady = document.getElementById('run-terminal').dataset.status;"
        " const facts = document.getElementById('run-facts');"
        " facts.dataset.status = 'connecting'; facts.dataset.finished = '0'; }, true);"
    )

    def slow_script(route):
        time.sleep(2)  # the socket's status arrives meanwhile
        route.continue_()

    page.route(re.compile(r"addon-fit\.js"), slow_script)
    page.reload()
    assert page.evaluate("() => window.statusBeforeReady") == "succeeded"  # it did arrive first
    _wait_until_finished(page)
    assert page.locator("#run-facts").get_attribute("data-status") == "succeeded"


def test_markup_in_the_output_is_shown_as_text_and_never_runs(page_as, demo_server):
    page = page_as("operator")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    errors = _console_errors(page)
    command = (
        "echo '<script>alert(1)</script>'; echo '<img src=x onerror=alert(1)>'; "
        "printf '\\033[38;2;255;100;0mtruecolor\\033[0m \\033[1;32mgreen\\033[0m\\n'"
    )
    _start(page, demo_server, command)
    _wait_for_text(page, "truecolor green")
    _wait_until_finished(page)
    text = page.evaluate(BUFFER)
    assert "<script>alert(1)</script>" in text and "<img src=x onerror=alert(1)>" in text
    # Escapes stay inside the terminal: colours applied, no escape text shown, no CSP refusal.
    colour = page.evaluate(
        "() => [...document.querySelectorAll('#run-terminal .xterm-rows span')]"
        ".filter(s => s.textContent === 'truecolor').map(s => getComputedStyle(s).color)[0]"
    )
    assert colour == "rgb(255, 100, 0)"
    assert "[38;2" not in text
    assert page.evaluate("() => document.querySelectorAll('img[src=x], #run-terminal script').length") == 0
    page.reload()  # the stored transcript is as harmless as the live one
    _wait_for_text(page, "<script>alert(1)</script>")
    assert dialogs == []
    screenshot(page, "run-hostile-output")
    assert errors == [], f"browser console errors (a CSP violation?): {errors}"


def test_an_operator_runs_a_command_and_watches_it_live(page_as, demo_server):
    # Acme Production asks one approval for commands: the run page is open and connected
    # before the command starts, so the test sees its output arrive, not a replay of it.
    page = page_as("operator")
    errors = _console_errors(page)
    page.goto(f"{demo_server}/runs/new/")
    _pick(page, account="Acme Production", region="eu-west-1", cluster="prod-web")
    assert page.locator("#pick-readiness .badge").inner_text() == "exec ready"
    page.fill("#run-command", "echo hello; sleep 1; echo done; exit 3")
    page.fill("#run-reason", "check the app answers")
    screenshot(page, "run-form")
    page.click("#run-submit")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    page.wait_for_selector("#run-connection[data-state='live']")
    assert page.locator("#run-status .badge").inner_text() == "Awaiting approval"
    screenshot(page, "run-awaiting-approval")
    approval = page.locator("#run-approval a").get_attribute("href")

    approver = page_as("approver")
    approver.goto(f"{demo_server}{approval}")
    approver.click("button[value=approve]")

    page.wait_for_function(f"() => {{ const t = ({BUFFER})(); return t.includes('hello') && !t.includes('done'); }}")
    screenshot(page, "run-running")
    _wait_for_text(page, "done")
    _wait_until_finished(page)
    assert page.locator("#run-exit").inner_text().strip() == "3"
    assert page.locator("#run-status .badge").inner_text() == "Failed"
    text = page.evaluate(BUFFER)
    assert text.index("hello") < text.index("done")
    assert "ecsportal-exit" not in text and "=3" not in text  # the runner's exit marker is not output
    assert page.locator("#run-connection").inner_text() == "ended"
    assert page.locator("#run-cancel").count() == 0
    screenshot(page, "run-finished")

    # The finished run replays its asciicast in the same terminal.
    page.click("#run-replay")
    page.wait_for_selector("#run-replay:text-is('Replay')")
    replayed = page.evaluate(BUFFER)
    assert replayed.count("hello") == 1 and replayed.count("done") == 1
    assert errors == [], f"browser console errors (a CSP violation?): {errors}"


def test_a_viewer_watches_until_logging_out_and_an_operator_cancels(page_as, demo_server):
    operator = page_as("operator")
    _start(operator, demo_server, "echo waiting; sleep 60; echo never")
    _wait_for_text(operator, "waiting")
    run_url = operator.url

    viewer = page_as("viewer")
    errors = _console_errors(viewer)
    viewer.goto(run_url)
    _wait_for_text(viewer, "waiting")
    assert viewer.locator("#run-connection").inner_text() == "live"
    assert viewer.locator("#run-cancel").count() == 0  # viewers watch, they do not cancel
    other_tab = viewer.context.new_page()
    other_tab.goto(f"{demo_server}/")
    other_tab.click("nav button[type=submit]")  # Log out
    viewer.wait_for_selector("#run-connection[data-state='refused']")
    assert "logged out" in viewer.locator("#run-connection").inner_text()

    operator.once("dialog", lambda dialog: dialog.accept())  # "Cancel run #…?"
    operator.click("#run-cancel")
    _wait_until_finished(operator)
    assert operator.locator("#run-status .badge").inner_text() == "Cancelled"
    assert "Cancelled by operator" in operator.locator("#run-end-reason").inner_text()
    assert "never" not in operator.evaluate(BUFFER)
    screenshot(operator, "run-cancelled")
    assert errors == [], f"browser console errors (a CSP violation?): {errors}"


def test_the_history_lists_the_runs(page_as, demo_server):
    page = page_as("viewer")
    errors = _console_errors(page)
    page.goto(f"{demo_server}/runs/")
    page.wait_for_selector(".run-row, #runs-empty")
    screenshot(page, "runs-history")
    if page.locator(".run-row").count():
        page.select_option("#f-status", "failed")
        page.wait_for_selector("#run-results")
        page.wait_for_url(re.compile(r"status=failed"))
        assert all(b == "Failed" for b in page.locator(".run-row .badge.run-status").all_inner_texts())
        page.locator(".run-link").first.click()
        page.wait_for_selector("#run-terminal .xterm")
        assert page.locator("#run-cancel").count() == 0 and page.locator("#download-text").count() == 0
    assert errors == [], f"browser console errors (a CSP violation?): {errors}"


def test_the_operator_sees_a_rejection_live_in_the_approvers_words(page_as, demo_server):
    # The approver's rejection ends the run at once (the approvals gate's hook), and the run
    # page says who rejected it and why while it is open, without a reload.
    page = page_as("operator")
    errors = _console_errors(page)
    page.goto(f"{demo_server}/runs/new/")
    _pick(page, account="Acme Production", region="eu-west-1", cluster="prod-web")
    page.fill("#run-command", "echo never")
    page.fill("#run-reason", "to see the queue")
    page.click("#run-submit")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    page.wait_for_selector("#run-connection[data-state='live']")
    approval = page.locator("#run-approval a").get_attribute("href")

    approver = page_as("approver")
    approver.goto(f"{demo_server}{approval}")
    approver.fill("#decision-comment", "Use the queue-depth runbook instead.")
    approver.click("button[value=reject]")

    page.wait_for_selector("#run-end-reason:has-text('Rejected by approver: Use the queue-depth runbook instead.')")
    assert page.locator("#run-status .badge").inner_text() == "Cancelled"
    _wait_until_finished(page)
    screenshot(page, "run-rejected")
    assert errors == [], f"browser console errors: {errors}"
