"""Keyboard-only use in a real browser against `manage.py demo`: no clicks, only keys.

Where a page has many tab stops between two controls, the test focuses the next control with
`focus()` (as a person would by tabbing on) and then uses only the keyboard on it. What is
checked after each step: where focus is, and what the page's status region said.
"""

from __future__ import annotations

import re

from tests.conftest import screenshot

# Every text the persistent status region (#announcer) is given, in order, kept in the page.
RECORD_ANNOUNCEMENTS = """
window.__said = [];
document.addEventListener("DOMContentLoaded", () => {
  const region = document.getElementById("announcer");
  if (!region) { return; }
  new MutationObserver(() => { if (region.textContent) { window.__said.push(region.textContent); } })
    .observe(region, { childList: true, characterData: true, subtree: true });
});
"""
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) { return "body"; }
  return el.id ? "#" + el.id : el.tagName.toLowerCase() + (el.className ? "." + String(el.className).split(" ").join(".") : "");
}"""


# The failures panel's periodic refresh, as its hx-trigger fires it, resolved once settled.
REFRESH_FAILURES = """() => new Promise(resolve => {
  document.body.addEventListener("htmx:afterSwap", () => window.setTimeout(resolve, 0), { once: true });
  htmx.ajax("GET", "/home/failures/", { source: "#panel-failures", target: "#panel-failures", swap: "innerHTML" });
})"""


def focused(page) -> str:
    return page.evaluate(FOCUSED)


def said(page) -> list[str]:
    return page.evaluate("() => window.__said")


def keyboard_page(page_as, role: str):
    page = page_as(role)
    page.add_init_script(RECORD_ANNOUNCEMENTS)
    return page


def tab_to(page, selector: str, *, limit: int = 40, back: bool = False) -> None:
    """Press Tab (or Shift+Tab) until `selector` has focus."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Shift+Tab" if back else "Tab")
    raise AssertionError(f"{selector} not reached in {limit} presses; focus is on {focused(page)}")


def arrow_to(page, select: str, wanted: str, answer: str) -> None:
    """With a <select> focused, press ArrowDown (each press a change and a picker request) until its value is `wanted`."""
    for _ in range(30):
        if page.eval_on_selector(select, "el => el.value") == wanted:
            return
        with page.expect_response(re.compile(answer)):
            page.keyboard.press("ArrowDown")
        page.wait_for_function("s => !document.querySelector('#picker.is-refreshing')", arg=select)
    raise AssertionError(f"{wanted} not found in {select}")


def test_a_keyboard_user_skips_the_navigation_picks_a_container_starts_a_run_and_leaves_the_terminal(
    page_as, demo_server
):
    page = keyboard_page(page_as, "operator")
    page.goto(f"{demo_server}/runs/new/")
    page.wait_for_load_state("load")
    page.keyboard.press("Tab")
    assert focused(page) == "a.skip-link"  # the first stop, shown when focused
    assert page.locator(".skip-link").bounding_box()["y"] >= 0
    page.keyboard.press("Enter")
    assert focused(page) == "#content"
    assert page.locator("nav a[aria-current='page']").inner_text() == "Run a command"

    tab_to(page, "#pick-account")
    account = page.locator("#pick-account option", has_text="Acme Staging").get_attribute("value")
    arrow_to(page, "#pick-account", account, r"/runs/pick/\?")
    assert focused(page) == "#pick-account"  # the picker re-rendered around the focused select
    for select, value in (("#pick-region", "eu-west-1"), ("#pick-cluster", "staging")):
        page.keyboard.press("Tab")
        assert focused(page) == select
        arrow_to(page, select, value, r"/runs/pick/\?")
        assert focused(page) == select
    page.keyboard.press("Tab")
    task = page.locator("#pick-task option", has_text="web · web:").first.get_attribute("value")
    arrow_to(page, "#pick-task", task, r"/runs/pick/\?")
    page.keyboard.press("Tab")
    arrow_to(page, "#pick-container", "app", r"/runs/pick/\?")
    assert focused(page) == "#pick-container"
    tab_to(page, "#run-command")
    page.keyboard.type("echo typed-by-keyboard")
    tab_to(page, "#run-submit")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/runs/(\d+)/$"))

    # The terminal: reached with Tab, left with Tab, Shift+Tab, and Esc then Tab (said on the page).
    page.wait_for_selector("#run-terminal .xterm-helper-textarea", state="attached")
    assert "moves focus out" in page.inner_text("#run-keys")
    tab_to(page, ".xterm-helper-textarea")
    assert page.get_attribute(".xterm-helper-textarea", "aria-describedby") == "run-keys"
    page.keyboard.press("Tab")
    assert not page.evaluate("() => document.getElementById('run-terminal').contains(document.activeElement)")
    assert focused(page) != "body"
    tab_to(page, ".xterm-helper-textarea", back=True)
    page.keyboard.press("Shift+Tab")
    assert focused(page) in ("#run-search", "#run-replay")  # the terminal bar's controls, before it
    # Where Tab is input (a terminal that sends keys to a shell), Tab stays; Esc then Tab leaves.
    inside = "() => document.getElementById('run-terminal').contains(document.activeElement)"
    page.eval_on_selector("#run-terminal", "box => box.setAttribute('data-tab-is-input', '')")
    tab_to(page, ".xterm-helper-textarea")
    page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(inside)
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")
    assert not page.evaluate(inside)

    screenshot(page, "a11y-run-page-keyboard")


def test_a_keyboard_user_filters_sorts_and_pages_stopped_tasks_and_focus_stays_put(page_as, demo_server):
    page = keyboard_page(page_as, "viewer")
    page.goto(f"{demo_server}/stopped/")
    page.wait_for_load_state("load")
    tab_to(page, "#f-range", limit=60)
    with page.expect_response(re.compile(r"/stopped/\?")):
        page.keyboard.press("End")  # the widest range: enough tasks for a second page
    page.wait_for_function("() => !document.querySelector('#stopped-results.is-refreshing')")
    assert focused(page) == "#f-range"

    # Sort: the link keeps focus through the swap, and the column says how it is sorted.
    sort_link = "a[data-focus-key='sort-category']"
    page.locator(sort_link).focus()
    with page.expect_response(re.compile(r"sort=-?category")):
        page.keyboard.press("Enter")
    page.wait_for_selector(f"th[aria-sort] {sort_link}")
    first = page.get_attribute("th[aria-sort]", "aria-sort")
    page.wait_for_function(f"() => document.activeElement.matches({sort_link!r})")
    with page.expect_response(re.compile(r"sort=-?category")):
        page.keyboard.press("Enter")
    flipped = {"ascending": "descending", "descending": "ascending"}[first]
    page.wait_for_selector(f"th[aria-sort='{flipped}'] {sort_link}")
    page.wait_for_function(f"() => document.activeElement.matches({sort_link!r})")
    assert page.locator("th[aria-sort]").count() == 1

    # Paging: focus stays on "Older" while there is an older page.
    page.locator("a[rel='next']").focus()
    with page.expect_response(re.compile(r"page=2")):
        page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.activeElement.matches(\"a[rel='next'], a[rel='prev'], [data-focus-target]\")"
    )
    assert focused(page) != "body"

    # The chart's window: a toggle button, pressed with Space, focus kept; its table tells the numbers.
    toggle = page.locator("#stopped-chart a[data-focus-key='chart-7d']")
    assert toggle.get_attribute("aria-pressed") == "false"
    toggle.focus()
    page.keyboard.press("Space")
    page.wait_for_selector("#stopped-chart a[data-focus-key='chart-7d'][aria-pressed='true']")
    page.wait_for_function("() => document.activeElement.matches(\"a[data-focus-key='chart-7d']\")")
    table = page.locator("#chart-table")
    table.locator("summary").focus()
    page.keyboard.press("Enter")
    totals = table.locator("tfoot td").all_inner_texts()
    legend = page.locator(".chart-legend li .text-body-secondary").all_inner_texts()
    assert totals[:-1] == legend and int(totals[-1]) == sum(int(n) for n in legend)
    screenshot(page, "a11y-stopped-keyboard")


def test_a_keyboard_user_approves_a_request_and_both_sides_hear_of_it(page_as, demo_server):
    operator = keyboard_page(page_as, "operator")
    operator.goto(f"{demo_server}/runs/new/")
    from tests.test_accessibility import pick_staging_app

    pick_staging_app(operator, account="Acme Production", cluster="prod-web")
    operator.fill("#run-command", "printf '\\033[1mread-out\\033[0m line\\n'; echo second-read-out-line")
    operator.fill("#run-reason", "keyboard check")
    operator.click("#run-submit")
    operator.wait_for_url(re.compile(r"/runs/\d+/$"))
    run = re.search(r"/runs/(\d+)/$", operator.url).group(1)
    operator.wait_for_selector("#run-approval a")
    approval = operator.locator("#run-approval a").get_attribute("href")
    pk = re.search(r"/approvals/(\d+)/", approval).group(1)
    operator.wait_for_selector("#run-connection[data-state='live']")  # its output will arrive live

    approver = keyboard_page(page_as, "approver")
    approver.goto(f"{demo_server}{approval}")
    approver.wait_for_selector("body[data-live-approval-changed=open]", state="attached")
    tab_to(approver, "#decision-comment", limit=60)
    approver.keyboard.type("fine by keyboard")
    approver.keyboard.press("Tab")
    assert approver.evaluate("() => document.activeElement.value") == "approve"
    approver.keyboard.press("Enter")
    approver.wait_for_selector("#approval-card:not([data-status='pending'])")
    # The decision form is gone: focus is on the request's heading, not lost to <body>.
    approver.wait_for_function("() => document.activeElement.matches('#approval-card h1')")
    approver.wait_for_function(f"() => window.__said.some(t => t.startsWith('Request #{pk} is '))")
    assert "pending" not in [t for t in said(approver) if t.startswith(f"Request #{pk} is ")][-1]

    # The operator's run page, untouched, announces the run's status and reads its live output
    # as plain text (no terminal escapes).
    operator.wait_for_selector("#run-facts[data-finished='1']")
    operator.wait_for_function(f"() => window.__said.some(t => t.includes('Run #{run}: Succeeded'))")
    operator.wait_for_function(
        "() => document.getElementById('run-output-live').textContent.includes('second-read-out-line')"
    )
    live = operator.locator("#run-output-live").text_content()
    assert "read-out line" in live and "\x1b" not in live and "[1m" not in live


def test_a_panel_refresh_keeps_focus_where_it_was(page_as, demo_server):
    page = keyboard_page(page_as, "operator")
    page.goto(f"{demo_server}/")
    page.wait_for_selector("#panel-failures a.failure-link")
    link = page.locator("#panel-failures a.failure-link").first
    href = link.get_attribute("href")
    assert re.search(r"\d+ stopped tasks?: .+", link.text_content())  # says what it counts
    link.focus()
    page.evaluate(REFRESH_FAILURES)
    assert page.evaluate("() => document.activeElement.getAttribute('href')") == href
    assert page.evaluate("() => document.getElementById('panel-failures').contains(document.activeElement)")

    # Focus elsewhere: a refresh never takes it.
    page.locator("nav a:text-is('Runs')").focus()
    page.evaluate(REFRESH_FAILURES)
    assert page.evaluate("() => document.activeElement.textContent") == "Runs"
