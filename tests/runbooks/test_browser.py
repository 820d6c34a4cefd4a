"""The self-service page in a real browser against `manage.py demo` (its runner and emulator)."""

from __future__ import annotations

import re

from tests.conftest import screenshot

TERMINAL_TEXT = """() => {
  const run = window.ecsportalRun;
  if (!run) { return ""; }
  const buffer = run.term.buffer.active;
  const lines = [];
  for (let i = 0; i < buffer.length; i++) { lines.push(buffer.getLine(i).translateToString(true)); }
  return lines.join("\\n");
}"""


def _choose(page, select: str, value: str) -> None:
    page.wait_for_load_state("load")
    with page.expect_response(re.compile(r"/runbooks/\d+/pick/\?")):
        page.select_option(select, value=value)


def _pick_staging_web_app(page) -> None:
    account = page.locator("#pick-account option", has_text="Acme Staging").get_attribute("value")
    _choose(page, "#pick-account", account)
    page.wait_for_selector("#pick-region:not([disabled])")
    _choose(page, "#pick-region", "eu-west-1")
    page.wait_for_selector("#pick-cluster:not([disabled])")
    _choose(page, "#pick-cluster", "staging")
    page.wait_for_selector("#pick-task:not([disabled])")
    task = page.locator("#pick-task option", has_text="web · web:").first.get_attribute("value")
    _choose(page, "#pick-task", task)
    page.wait_for_selector("#pick-container:not([disabled])")
    _choose(page, "#pick-container", "app")


def _open(page, base: str, name: str) -> None:
    page.goto(f"{base}/runbooks/")
    page.locator(".runbook-card", has_text=name).get_by_role("link", name="Run…").click()
    page.wait_for_url(re.compile(r"/runbooks/\d+/$"))


def test_an_operator_runs_a_runbook_and_sees_its_output_on_the_run_page(page_as, demo_server):
    page = page_as("operator")
    page.goto(f"{demo_server}/runbooks/")
    assert page.locator(".runbook-card").count() >= 4
    assert (
        page.locator(".runbook-card", has_text="Disk usage of a directory").locator(".badge").inner_text()
        == "needs approval"
    )
    screenshot(page, "runbooks-self-service")

    _open(page, demo_server, "Look up a host")
    assert page.locator("#id_opt_host").input_value() == "localhost"  # the default
    _pick_staging_web_app(page)
    page.get_by_role("button", name="Run").click()
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    page.wait_for_function(f"() => ({TERMINAL_TEXT})().includes('localhost')", timeout=30000)
    page.wait_for_function("() => document.querySelector('#run-facts')?.dataset.finished === '1'", timeout=30000)
    assert "Succeeded" in page.locator("#run-status").inner_text()
    assert "getent ahosts localhost" in page.content()
    screenshot(page, "runbooks-run-page")


def test_a_runbook_form_shows_each_refused_value_with_what_was_typed(page_as, demo_server):
    page = page_as("operator")
    _open(page, demo_server, "Tail a log file")
    _pick_staging_web_app(page)
    page.fill("#id_opt_path", "/etc/passwd; id")
    page.fill("#id_opt_lines", "99999")
    page.evaluate("() => { window.samePage = true; }")
    page.get_by_role("button", name="Run").click()
    page.wait_for_selector("#id_opt_path ~ .invalid-feedback")
    assert page.evaluate("() => window.samePage") is True  # the form was swapped in place (htmx)

    assert "Not in the form “Log file” accepts" in page.locator("#id_opt_path ~ .invalid-feedback").inner_text()
    assert "At most 5000" in page.locator("#id_opt_lines ~ .invalid-feedback").inner_text()
    assert page.locator("#id_opt_path").input_value() == "/etc/passwd; id"
    assert page.locator("#pick-container").input_value() == "app"
    screenshot(page, "runbooks-form-errors")


def test_a_viewer_reads_runbooks_but_is_told_running_needs_the_operator_role(page_as, demo_server):
    page = page_as("viewer")
    page.goto(f"{demo_server}/runbooks/")
    assert "running one needs the operator role" in page.locator("main").inner_text()
    assert page.get_by_role("link", name="Run…").count() == 0
    screenshot(page, "runbooks-viewer")


def test_an_admin_manages_runbooks(page_as, demo_server):
    page = page_as("admin")
    page.goto(f"{demo_server}/runbooks/manage/")
    assert page.locator("table tbody tr").count() >= 4
    screenshot(page, "runbooks-manage-list")

    page.get_by_role("link", name="Tail a log file").click()
    page.wait_for_url(re.compile(r"/runbooks/manage/\d+/$"))
    page.fill("#id_command_template", "tail -n {lines} -- '{path}'")
    page.evaluate("() => { window.samePage = true; }")
    page.get_by_role("button", name="Save").click()
    page.wait_for_function("() => document.querySelector('main').innerText.includes('inside quotes')")
    assert page.evaluate("() => window.samePage") is True  # the form was swapped in place (htmx)
    screenshot(page, "runbooks-manage-edit-error")

    page.goto(f"{demo_server}/runbooks/manage/new/")
    screenshot(page, "runbooks-manage-new")
