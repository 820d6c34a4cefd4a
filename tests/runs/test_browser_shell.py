"""An interactive shell in real browsers (Playwright + Debian's Chromium) against `manage.py
demo`, whose in-process runner opens the shell in the SSM agent emulator: an operator types, a
viewer watches, the keyboard is handed over, a reload reattaches. The terminal is read through
xterm.js's buffer API, not pixels."""

from __future__ import annotations

import re

from tests.conftest import screenshot
from tests.runs.test_browser import BUFFER, _console_errors, _pick

WAIT = 30000  # ms: the machine is shared and busy; wait for events, never for times


def _wait_for_line(page, text: str) -> None:
    """A line of the terminal that is exactly `text` (the typed command echoes differently)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            f"() => ({BUFFER})().split('\\n').some((line) => line.trim() === {text!r})", timeout=WAIT
        )
    except PlaywrightTimeout:
        raise AssertionError(f"no line {text!r} in the terminal:\n{page.evaluate(BUFFER)[-1500:]}") from None


# What a shell page says about itself: when the owner never gets the keyboard, the failure
# names why (the socket refused, 4429 over the user's socket budget, the run queued or ended,
# input paused) instead of a bare timeout.
PAGE_FACTS = """() => {
  const text = (id) => { const el = document.getElementById(id); return el ? el.textContent.trim() : null; };
  const box = document.getElementById('run-terminal');
  const facts = document.getElementById('run-facts');
  return {
    typing: box && box.getAttribute('data-typing'), holder: box && box.getAttribute('data-holder'),
    connection: text('run-connection'),
    connection_state: document.getElementById('run-connection') && document.getElementById('run-connection').getAttribute('data-state'),
    status: facts && facts.getAttribute('data-status'), end_reason: text('run-end-reason'),
    paused: text('session-paused'), refused: text('session-refused'), notice: text('session-notice'),
    banner: text('request-error'), people: text('session-people'),
  };
}"""


def _wait_for_terminal(page, typing: str, what: str, timeout: int = WAIT) -> None:
    """Until the terminal's `data-typing` is `typing`; else fail saying what the page says."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_selector(f"#run-terminal[data-typing='{typing}']", timeout=timeout)
    except PlaywrightTimeout:
        raise AssertionError(f"{page.url}: {what}; the page says {page.evaluate(PAGE_FACTS)}") from None


def _wait_for_keyboard(page, timeout: int = WAIT) -> None:
    _wait_for_terminal(page, "1", "the keyboard never came", timeout)


def _open_shell(page, base: str) -> str:
    page.goto(f"{base}/runs/new/")
    _pick(page, account="Acme Staging", region="eu-west-1", cluster="staging")
    page.click("#shell-submit")
    page.wait_for_url(re.compile(r"/runs/\d+/$"), timeout=WAIT)
    # The session starts (ExecuteCommand, the channel, the shell) and its state reaches a cold page.
    _wait_for_keyboard(page, 2 * WAIT)
    return page.url


def _type(page, text: str) -> None:
    page.click("#run-terminal")
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def test_an_operator_types_into_a_shell_a_viewer_watches_and_the_keyboard_is_handed(page_as, demo_server):
    owner = page_as("operator")
    errors = _console_errors(owner)
    url = _open_shell(owner, demo_server)
    _type(owner, "echo $((6*7))")
    _wait_for_line(owner, "42")

    # The window's size becomes the terminal's: stty agrees with what xterm shows.
    before = owner.evaluate("() => window.ecsportalRun.term.cols")
    owner.set_viewport_size({"width": 700, "height": 700})
    owner.wait_for_function(f"() => window.ecsportalRun.term.cols < {before}", timeout=WAIT)
    owner.wait_for_timeout(400)  # the resize message is debounced (150 ms)
    cols, rows = owner.evaluate("() => [window.ecsportalRun.term.cols, window.ecsportalRun.term.rows]")
    _type(owner, "stty size")
    _wait_for_line(owner, f"{rows} {cols}")

    # Ctrl-C interrupts a long command and the prompt comes back.
    _type(owner, "sleep 100")
    owner.wait_for_timeout(300)
    owner.keyboard.press("Control+c")
    _type(owner, "echo back-$((1+1))")
    _wait_for_line(owner, "back-2")

    # Tab reaches the shell (bash completes; the default /bin/sh may not).
    _type(owner, "exec bash --norc")
    owner.wait_for_timeout(500)
    owner.keyboard.type("ls -d /etc/hostnam")
    owner.keyboard.press("Tab")
    owner.keyboard.press("Enter")
    _wait_for_line(owner, "/etc/hostname")

    # A viewer sees the same output live; its typing changes nothing.
    watcher = page_as("viewer")
    watcher.goto(url)
    # A cold page under load (xterm, the socket, the replay, then the session's state): twice the wait.
    _wait_for_terminal(watcher, "0", "the session's state never reached the watcher", 2 * WAIT)
    _wait_for_line(watcher, "42")
    watcher.click("#run-terminal")
    watcher.keyboard.type("echo FORGED")
    watcher.keyboard.press("Enter")
    owner.wait_for_selector("#session-people li[data-username='viewer']", timeout=WAIT)
    _type(owner, "echo live-$((3+4))")
    _wait_for_line(watcher, "live-7")
    assert "FORGED" not in owner.evaluate(BUFFER)
    assert "watching" in watcher.locator("#session-you-watch").inner_text()

    # The owner hands the keyboard to another operator, who types; then takes it back.
    second = page_as("approver")
    second.goto(url)
    owner.wait_for_selector("#session-hand-to option[value='approver']", state="attached", timeout=WAIT)
    owner.select_option("#session-hand-to", "approver")
    owner.click("#session-hand")
    second.wait_for_selector("#run-terminal[data-typing='1']", timeout=WAIT)
    watcher.wait_for_function(
        "() => document.getElementById('session-holder').textContent === 'approver'", timeout=WAIT
    )
    _type(second, "echo handed-$((2+2))")
    _wait_for_line(owner, "handed-4")
    owner.click("#session-take")
    owner.wait_for_selector("#run-terminal[data-typing='1']", timeout=WAIT)
    screenshot(owner, "shell-owner")
    screenshot(watcher, "shell-viewer")

    # A reload reattaches with the scrollback, and the owner still types.
    owner.reload()
    _wait_for_line(owner, "42")
    owner.wait_for_selector("#run-terminal[data-typing='1']", timeout=WAIT)
    _type(owner, "echo again-$((4+5))")
    _wait_for_line(owner, "again-9")
    _type(owner, "exit")
    owner.wait_for_selector("#run-facts[data-finished='1']", timeout=WAIT)
    assert "shell exited" in owner.locator("#run-end-reason").inner_text()
    assert errors == [], f"browser console errors (a CSP violation?): {errors}"


def test_a_page_whose_scripts_load_after_the_first_session_state_still_shows_it(page_as, demo_server):
    """run-terminal.js opens the socket while xterm.js loads; the state sent when the socket
    opened can be read before shell-terminal.js is there to take it. Hold xterm.js until that
    state has reached the browser: the page must still learn who holds the keyboard."""
    owner = page_as("operator")
    url = _open_shell(owner, demo_server)
    watcher = page_as("viewer")
    errors = _console_errors(watcher)
    held, frames = [], []
    watcher.route("**/vendor/xterm/xterm.js", lambda route: held.append(route))
    watcher.on("websocket", lambda socket: socket.on("framereceived", lambda frame: frames.append(frame)))
    watcher.goto(url, wait_until="commit")
    for _ in range(600):  # until the session's first state reached the browser (≤ 60 s)
        if held and any('"type": "session"' in str(frame) for frame in frames):
            break
        watcher.wait_for_timeout(100)
    else:
        raise AssertionError(f"no session state on the socket before xterm.js loaded: {frames[:5]}")
    held[0].continue_()
    _wait_for_terminal(watcher, "0", "the state that came before the scripts was never shown", 2 * WAIT)
    assert watcher.text_content("#session-holder") == "operator"
    _type(owner, "exit")
    owner.wait_for_selector("#run-facts[data-finished='1']", timeout=WAIT)
    assert errors == [], f"browser console errors (a CSP violation?): {errors}"


def _moderate_staging(admin, base: str, on: bool) -> None:
    """The account admin's form: Acme Staging's shells moderated (or not), as its admins set it."""
    admin.goto(f"{base}/accounts/")
    admin.locator("a:text-is('Acme Staging')").first.click()
    admin.wait_for_url(re.compile(r"/accounts/\d+/$"))
    detail = admin.url
    admin.goto(f"{detail}edit/")
    admin.locator("#id_shell_moderated").set_checked(on)
    admin.get_by_role("button", name="Save changes").click()
    admin.wait_for_url(detail, timeout=WAIT)
    assert ("moderated" in admin.text_content("#shell-policy")) == on


def test_a_moderated_shell_takes_input_only_while_an_approver_watches(page_as, demo_server):
    admin = page_as("admin")
    _moderate_staging(admin, demo_server, True)
    try:
        owner = page_as("operator")
        errors = _console_errors(owner)
        owner.goto(f"{demo_server}/runs/new/")
        _pick(owner, account="Acme Staging", region="eu-west-1", cluster="staging")
        owner.click("#shell-submit")
        owner.wait_for_url(re.compile(r"/runs/\d+/$"), timeout=WAIT)
        url = owner.url
        # Running, the owner holds the keyboard, and the page says why input is paused.
        owner.wait_for_selector("#run-terminal[data-holder='operator'][data-typing='0']", timeout=2 * WAIT)
        owner.wait_for_selector("#session-paused:not([hidden])", timeout=WAIT)
        assert "no approver other than its owner is watching" in owner.text_content("#session-paused")
        owner.wait_for_selector("#run-facts[data-status='running']", timeout=2 * WAIT)
        owner.click("#run-terminal")
        owner.keyboard.type("echo EARLY-$((1+1))")
        owner.keyboard.press("Enter")
        watcher = page_as("viewer")  # a viewer is no approver: still paused, and said there too
        watcher.goto(url)
        watcher.wait_for_selector("#session-paused:not([hidden])", timeout=2 * WAIT)
        owner.wait_for_selector("#session-people li[data-username='viewer']", timeout=WAIT)
        assert owner.get_attribute("#run-terminal", "data-typing") == "0"

        # An approver opens the session page: the owner's input works.
        approver = page_as("approver")
        approver.goto(url)
        owner.wait_for_selector("#run-terminal[data-typing='1']", timeout=2 * WAIT)
        assert owner.locator("#session-paused").is_hidden() and watcher.locator("#session-paused").is_hidden()
        _type(owner, "echo $((6*7))")
        _wait_for_line(owner, "42")
        _wait_for_line(approver, "42")
        assert "EARLY-2" not in owner.evaluate(BUFFER)
        screenshot(approver, "shell-moderated-approver")

        # The approver leaves: input pauses again, and every page says why.
        approver.close()
        owner.wait_for_selector("#run-terminal[data-typing='0']", timeout=WAIT)
        for page in (owner, watcher):
            page.wait_for_selector("#session-paused:not([hidden])", timeout=WAIT)
            assert "moderated" in page.text_content("#session-paused")
        assert owner.text_content("#session-you-watch") == "input paused"
        assert "holds the keyboard (paused)" in owner.text_content("#session-people li[data-username='operator']")
        screenshot(owner, "shell-moderated-paused")
        owner.click("#run-terminal")
        owner.keyboard.type("echo LATE-$((2+3))")
        owner.keyboard.press("Enter")
        owner.once("dialog", lambda dialog: dialog.accept())  # "End shell #n for everyone in it?"
        owner.click("#shell-end")
        owner.wait_for_selector("#run-facts[data-finished='1']", timeout=WAIT)
        assert "LATE-5" not in owner.evaluate(BUFFER)
        assert errors == [], f"browser console errors (a CSP violation?): {errors}"
    finally:
        _moderate_staging(admin, demo_server, False)  # the demo server is shared with other tests


def _shell_policy(admin, base: str, account: str, access: str) -> None:
    """The account admin's form: who may open shells on `account` ("" is the default)."""
    admin.goto(f"{base}/accounts/")
    admin.locator(f"a:text-is('{account}')").first.click()
    admin.wait_for_url(re.compile(r"/accounts/\d+/$"))
    detail = admin.url
    admin.goto(f"{detail}edit/")
    admin.select_option("#id_shell_access", access)
    admin.get_by_role("button", name="Save changes").click()
    admin.wait_for_url(detail, timeout=WAIT)


PASTE = """(el) => {
  const data = new DataTransfer();
  data.setData('text/plain', 'echo pasted-$((20+1))\\necho pasted-$((20+2))\\n');
  el.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
}"""


def test_copy_paste_and_an_observer_that_sends_nothing_in_a_production_shell(page_as, demo_server):
    """Ctrl+C copies a selection and interrupts only without one; a multi-line paste into a
    production shell asks first; an observer's page sends no input, not even xterm's own answer
    to a terminal query in the output."""
    admin = page_as("admin")
    _shell_policy(admin, demo_server, "Acme Production", "operators")  # no access request needed here
    try:
        owner = page_as("operator")
        owner.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=demo_server)
        owner.goto(f"{demo_server}/runs/new/")
        _pick(owner, account="Acme Production", region="eu-west-1", cluster="prod-web")
        owner.click("#shell-submit")
        owner.wait_for_url(re.compile(r"/runs/\d+/$"), timeout=WAIT)
        owner.wait_for_selector("#run-terminal[data-production][data-typing='1']", timeout=2 * WAIT)
        url = owner.url

        watcher = page_as("viewer")
        sent: list[str] = []
        watcher.on("websocket", lambda ws: ws.on("framesent", lambda frame: sent.append(str(frame))))
        watcher.goto(url)
        _wait_for_terminal(watcher, "0", "the session's state never reached the watcher", 2 * WAIT)
        owner.wait_for_selector("#session-people li[data-username='viewer']", timeout=WAIT)

        # Output asking the terminal who it is (DA1): every xterm answers; the observer's must not send it.
        _type(owner, "printf '\\033[c'; echo query-$((1+2))")
        _wait_for_line(watcher, "query-3")
        watcher.click("#run-terminal")
        watcher.keyboard.type("echo FORGED")
        watcher.keyboard.press("Enter")
        watcher.keyboard.press("Control+c")
        assert [frame for frame in sent if '"input"' in frame or '"resize"' in frame] == []

        # The typist's xterm did answer (as a terminal does): its answer waits at the prompt; drop it.
        owner.click("#run-terminal")
        owner.keyboard.press("Control+c")
        _type(owner, "echo clean-$((2+2))")
        _wait_for_line(owner, "clean-4")

        # Ctrl+C with a selection copies and interrupts nothing: cat still reads afterwards.
        _type(owner, "cat")
        owner.wait_for_timeout(300)
        owner.evaluate("() => window.ecsportalRun.term.selectAll()")
        owner.keyboard.press("Control+c")
        owner.wait_for_function("() => navigator.clipboard.readText().then((t) => t.includes('query-3'))")
        _type(owner, "echo kept-$((5+5))")  # cat repeats it; a shell would print kept-10
        try:
            owner.wait_for_function(
                f"() => ({BUFFER})().split('\\n').filter((l) => l.trim() === 'echo kept-$((5+5))').length >= 2",
                timeout=WAIT,
            )
        except Exception:
            raise AssertionError(f"cat did not repeat the line:\n{owner.evaluate(BUFFER)[-800:]}") from None
        owner.evaluate("() => window.ecsportalRun.term.clearSelection()")
        owner.keyboard.press("Control+c")  # nothing selected: the interrupt
        _type(owner, "echo back-$((1+1))")
        _wait_for_line(owner, "back-2")
        assert "kept-10" not in owner.evaluate(BUFFER)

        # A multi-line paste asks first; refused, nothing reaches the shell; accepted, both lines run.
        asked: list[str] = []

        def answer(dialog, accept: bool) -> None:
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        textarea = owner.locator("#run-terminal textarea")
        owner.once("dialog", lambda dialog: answer(dialog, False))
        textarea.evaluate(PASTE)
        assert asked and "production shell" in asked[0]
        _type(owner, "echo marker-$((3+3))")
        _wait_for_line(owner, "marker-6")
        assert "pasted-21" not in owner.evaluate(BUFFER)
        owner.once("dialog", lambda dialog: answer(dialog, True))
        textarea.evaluate(PASTE)
        owner.keyboard.press("Enter")  # bracketed paste: the shell holds the lines until Enter
        _wait_for_line(owner, "pasted-21")
        _wait_for_line(owner, "pasted-22")
        assert len(asked) == 2
        assert "FORGED" not in owner.evaluate(BUFFER)
        _type(owner, "exit")
        owner.wait_for_selector("#run-facts[data-finished='1']", timeout=WAIT)
    finally:
        _shell_policy(admin, demo_server, "Acme Production", "")  # the demo server is shared with other tests
