"""Hostile container output on the run page, in a real browser (Playwright + Debian's Chromium).

A container is not trusted: whatever it prints reaches the operator's browser. Each test runs
one command printing several hostile outputs (markup, event handlers, OSC 52 clipboard writes,
OSC 8 hyperlinks, title changes, terminal queries, invalid UTF-8, a million-character line) and
checks that nothing executes — no dialog, no CSP violation, no console error, no element
injected, no clipboard write, no title change, no link to follow — and that the page stays
usable: the run finishes, the facts show its exit code, the page answers, the transcript
downloads.
"""

from __future__ import annotations

import base64

from tests.conftest import screenshot
from tests.runs.test_browser import BUFFER, _start, _wait_for_text

# Recorded from the first moment of every page: CSP violations, clipboard writes, window.open.
WATCH = """
window.__hostile = {csp: [], clipboard: [], opened: []};
document.addEventListener("securitypolicyviolation", function (e) {
  window.__hostile.csp.push(e.violatedDirective + " " + e.blockedURI);
});
if (navigator.clipboard) {
  const write = navigator.clipboard.writeText.bind(navigator.clipboard);
  navigator.clipboard.writeText = function (text) { window.__hostile.clipboard.push(String(text)); return write(text); };
}
const execCommand = document.execCommand.bind(document);
document.execCommand = function (name) { window.__hostile.clipboard.push("execCommand " + name); return execCommand.apply(null, arguments); };
const open = window.open.bind(window);
window.open = function (url) { window.__hostile.opened.push(String(url)); return open.apply(null, arguments); };
"""

CLIPBOARD_BEFORE = "clipboard-before-the-run"
INJECTED = "#run-terminal script, #run-terminal img, #run-terminal iframe, #run-terminal svg, #run-terminal a"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


MARKUP_AND_ESCAPES = "; ".join(
    [
        "echo '<script>window.pwned=1;alert(1)</script>'",
        "echo '<img src=x onerror=\"window.pwned=2;alert(2)\">'",
        'echo \'"><svg onload=alert(3)><iframe src="javascript:alert(4)"></iframe>\'',
        "echo '<a href=\"javascript:alert(5)\">click me</a>'",
        # OSC 52: put text on the clipboard (selection c, then the primary selection p)
        f"printf '\\033]52;c;{_b64('pwned-clipboard')}\\007\\033]52;p;{_b64('pwned-primary')}\\033\\\\'",
        # OSC 52 query: ask the terminal to send the clipboard back
        "printf '\\033]52;c;?\\007'",
        # OSC 8 hyperlinks: a javascript: one and an https one whose text is not its target
        "printf '\\033]8;;javascript:window.pwned=8\\007JSLINK\\033]8;;\\007\\n'",
        "printf '\\033]8;;https://evil.example/steal\\007HTTPLINK\\033]8;;\\007\\n'",
        # window title, icon name, and a title report request (CSI 21 t)
        "printf '\\033]0;PWNED-TITLE\\007\\033]2;PWNED-TITLE-2\\033\\\\\\033]1;icon\\007\\033[21t'",
        # device and cursor reports, a DECRQSS / XTGETTCAP request (answers would be input)
        "printf '\\033[6n\\033[>c\\033P$qm\\033\\\\\\033P+q544e\\033\\\\'",
        # invalid UTF-8: lone continuation bytes, an overlong form, a surrogate, a truncated sequence
        "printf 'bad:\\377\\376\\300\\200:\\355\\240\\200:\\342\\202:end\\n'",
        "echo AFTER-HOSTILE",
        "exit 7",
    ]
)


TAIL = """(text) => {
  const run = window.ecsportalRun;
  if (!run || !run.term) { return false; }
  const buffer = run.term.buffer.active;
  for (let i = Math.max(0, buffer.length - 200); i < buffer.length; i++) {
    if (buffer.getLine(i).translateToString(true).includes(text)) { return true; }
  }
  return false;
}"""


def _wait_for_tail(page, text: str) -> None:
    """Like _wait_for_text, for big outputs: reads only the last rows, four times a second (reading
    every row on every frame would slow the very page it waits for), and waits up to a minute."""
    page.wait_for_function(TAIL, arg=text, polling=250, timeout=60000)


def _wait_until_finished(page) -> None:
    """The facts panel says the run ended (a minute at most: the machine may be busy)."""
    page.wait_for_selector("#run-facts[data-finished='1']", timeout=60000)


def _watch(page) -> dict:
    """Dialogs and console errors from now on; the page's own records come from WATCH."""
    seen: dict[str, list[str]] = {"dialogs": [], "errors": []}
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    return seen


def _assert_nothing_ran(page, seen: dict, title: str) -> None:
    hostile = page.evaluate("() => window.__hostile")
    assert seen["dialogs"] == [], f"a dialog opened: {seen['dialogs']}"
    assert hostile["csp"] == [], f"CSP violations: {hostile['csp']}"
    assert seen["errors"] == [], f"console errors: {seen['errors']}"
    assert hostile["clipboard"] == [] and hostile["opened"] == []
    assert page.evaluate("() => window.pwned") is None
    assert page.evaluate(f"() => document.querySelectorAll({INJECTED!r}).length") == 0
    assert page.title() == title


def _download_text(page, selector: str) -> bytes:
    with page.expect_download() as info:
        page.click(selector)
    return open(info.value.path(), "rb").read()


def test_markup_clipboard_links_titles_and_bad_utf8_do_nothing(browser, demo_server):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    try:
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=demo_server)
        context.add_init_script(WATCH)
        page = context.new_page()
        page.set_default_timeout(20000)
        page.goto(f"{demo_server}/login/")
        page.fill("#id_username", "operator")
        page.fill("#id_password", "demo")
        page.click("button[type=submit]")
        page.wait_for_url(f"{demo_server}/")
        page.evaluate(f"() => navigator.clipboard.writeText({CLIPBOARD_BEFORE!r})")
        page.evaluate("() => { window.__hostile.clipboard = []; }")  # our own write, not the container's

        seen = _watch(page)
        _start(page, demo_server, MARKUP_AND_ESCAPES)
        run_url, title = page.url, page.title()
        _wait_for_text(page, "AFTER-HOSTILE")
        _wait_until_finished(page)

        text = page.evaluate(BUFFER)
        for shown in ("<script>window.pwned=1;alert(1)</script>", "onerror=", "<svg onload=alert(3)>", "JSLINK"):
            assert shown in text  # markup is shown as the text it is
        assert "HTTPLINK" in text and "bad:" in text and ":end" in text
        assert "PWNED" not in text and "52;" not in text and "]8;" not in text  # escapes are consumed, not shown

        # The hyperlinks' text is plain text: hovering and clicking follows nothing.
        pages_before = len(context.pages)
        for word in ("JSLINK", "HTTPLINK"):
            cell = page.locator("#run-terminal .xterm-rows > div", has_text=word).first
            # xterm's screen layer takes the pointer events: aim at the word's first cells
            cell.hover(force=True, position={"x": 12, "y": 6})
            screen_class = page.locator("#run-terminal .xterm-screen").get_attribute("class") or ""
            assert "xterm-cursor-pointer" not in screen_class, f"{word} became a link"
            cell.click(force=True, position={"x": 12, "y": 6})
        page.wait_for_timeout(300)  # a link would open its confirm dialog or window on the click itself
        assert len(context.pages) == pages_before and page.url == run_url

        assert page.evaluate("() => navigator.clipboard.readText()") == CLIPBOARD_BEFORE
        assert page.locator("#run-exit").inner_text().strip() == "7"
        assert page.locator("#run-status .badge").inner_text() == "Failed"
        # The facts show the command: escaped by the template, never markup.
        assert page.locator("#run-facts script, #run-facts img, #run-facts svg").count() == 0

        # Still usable: search finds text after the hostile output, the downloads work.
        page.fill("#run-search", "AFTER-HOSTILE")
        page.press("#run-search", "Enter")
        assert page.evaluate("() => window.ecsportalRun.term.getSelection()") == "AFTER-HOSTILE"
        plain = _download_text(page, "#download-text").decode()
        assert "<script>window.pwned=1;alert(1)</script>" in plain and "AFTER-HOSTILE" in plain
        assert "\x1b" not in plain and "PWNED-TITLE" not in plain
        raw = _download_text(page, "#download-escapes")
        assert b"\x1b]52;c;" in raw and b"\xff\xfe\xc0\x80" in raw  # exactly the bytes sent

        screenshot(page, "run-hostile-escapes")
        # The live run first: the reload below re-runs WATCH (a fresh window.__hostile) and drops
        # window.pwned with the old page, so what happened live can be read only now.
        _assert_nothing_ran(page, seen, title)
        page.reload()  # the stored transcript is as harmless as the live one
        _wait_for_text(page, "AFTER-HOSTILE")
        _assert_nothing_ran(page, seen, title)
    finally:
        context.close()


def test_a_million_character_line_and_a_flood_of_bad_bytes_leave_the_page_usable(page_as, demo_server):
    page = page_as("operator")
    seen = _watch(page)
    command = (
        "head -c 1000000 /dev/zero | tr '\\000' A; echo; "
        "head -c 200000 /dev/zero | tr '\\000' '\\377'; echo; "
        "echo BIG-DONE"
    )
    _start(page, demo_server, command)
    title = page.title()
    _wait_for_tail(page, "BIG-DONE")
    _wait_until_finished(page)
    assert page.locator("#run-exit").inner_text().strip() == "0"
    assert page.locator("#run-status .badge").inner_text() == "Succeeded"
    assert "MB" in page.locator("#run-bytes").inner_text()
    # the page still answers: an htmx refresh of the facts comes back and the search works
    with page.expect_response(lambda r: r.url.endswith("/") and r.request.headers.get("hx-request") == "true"):
        page.evaluate("() => window.htmx.trigger(document.body, 'run-status')")
    page.fill("#run-search", "BIG-DONE")
    page.press("#run-search", "Enter")
    assert page.evaluate("() => window.ecsportalRun.term.getSelection()") == "BIG-DONE"
    answer = page.request.get(page.url + "transcript.txt")
    assert answer.status == 200 and answer.headers["x-content-type-options"] == "nosniff"
    assert b"A" * 1000 in answer.body() and b"BIG-DONE" in answer.body()
    screenshot(page, "run-hostile-big-line")
    assert seen["dialogs"] == [] and seen["errors"] == [], seen
    assert page.title() == title
