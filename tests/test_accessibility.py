"""Accessibility (WCAG 2.1 AA) in a real browser against `manage.py demo`.

axe-core (vendored in static/vendor/axe-core/) is loaded into each page as a same-origin script,
which the page's own Content Security Policy allows: nothing is loosened for the check. It runs
the WCAG 2.0/2.1 A and AA rules over every page of a walk as each role, including a run page,
forms with errors and a pending approval. The same walk at 320 CSS px (a 1280 px window at
400 %; 200 % is wider) checks that no page scrolls sideways as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ecsportal.stopped import categories
from tests.conftest import ROOT, screenshot

AXE = "/static/vendor/axe-core/axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
ROLES = ("operator", "viewer", "approver", "admin")  # the operator first: its run is on the others' runs page

# Pages each role can reach by URL alone; the walk adds the ones found by following links.
PAGES = [
    "/",
    "/inventory/",
    "/stopped/",
    "/stopped/?chart=7d&sort=-category",
    "/runs/",
    "/runs/new/",
    "/runbooks/",
    "/batches/",
    "/batches/new/",  # a refusal page (403) for the viewer
    "/approvals/",
    "/approvals/?mine=on",
    "/accounts/",
    "/stops/new/",
    "/shells/access/new/",  # without a task: what to do instead (403 for an operator nowhere)
    "/audit/",  # a refusal page (403) but for the admin
    "/tokens/",
]
APPROVER_PAGES = ["/approvals/inbox/"]
ADMIN_PAGES = ["/runbooks/manage/", "/runbooks/manage/new/", "/accounts/new/"]


def axe_violations(page) -> list[str]:
    """axe's WCAG A/AA violations on the page as it is now, one line per element."""
    page.wait_for_load_state("load")
    if not page.evaluate("() => Boolean(window.axe)"):
        page.add_script_tag(url=AXE)  # same origin: script-src 'self' allows it
    # Colours are judged once CSS transitions have settled (a button fading to its focus colour,
    # a swapped form fading in): finite animations only, a spinner's never ends.
    page.wait_for_function(  # and htmx has finished swapping and settling (its classes fade content in)
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
    )
    page.evaluate(
        """() => Promise.all(document.getAnimations()
              .filter((a) => a.effect && Number.isFinite(a.effect.getComputedTiming().endTime))
              .map((a) => a.finished.catch(() => null)))"""
    )
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})", AXE_TAGS
    )
    return [
        f"{page.url}: {v['id']} ({v['impact']}) {node['target']}: {node.get('failureSummary', '')[:300]}"
        for v in result["violations"]
        for node in v["nodes"]
    ]


def sideways_overflow(page) -> int:
    """How many CSS px the page as a whole is wider than the window (0: it reflows)."""
    return page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


def _choose(page, select: str, value: str, answer: str) -> None:
    page.wait_for_load_state("load")
    with page.expect_response(re.compile(answer)):
        page.select_option(select, value=value)
    page.wait_for_selector(f"{select}:not([disabled])")


def pick_staging_app(
    page, answer: str = r"/pick/\?", *, account: str = "Acme Staging", cluster: str = "staging"
) -> None:
    """The picker, down to the web task's container "app" (by selecting, as a keyboard does)."""
    value = page.locator("#pick-account option", has_text=account).get_attribute("value")
    _choose(page, "#pick-account", value, answer)
    _choose(page, "#pick-region", "eu-west-1", answer)
    _choose(page, "#pick-cluster", cluster, answer)
    task = page.locator("#pick-task option", has_text="web · web:").first.get_attribute("value")
    _choose(page, "#pick-task", task, answer)
    _choose(page, "#pick-container", "app", answer)


def start_run(page, base: str, command: str, *, account: str = "Acme Staging", cluster: str = "staging") -> str:
    page.goto(f"{base}/runs/new/")
    pick_staging_app(page, account=account, cluster=cluster)
    page.fill("#run-command", command)
    page.fill("#run-reason", "accessibility check")
    page.click("#run-submit")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    return page.url


def start_batch(page, base: str, command: str, *, check: Callable[[object, str], None] | None = None) -> str:
    """Run on many: the demo's "fleet" service, previewed (checked), started, finished."""
    page.goto(f"{base}/batches/new/")
    page.select_option("#batch-accounts", label="Acme Staging")
    page.fill("#batch-cluster", "staging")
    page.fill("#batch-service", "fleet")
    page.fill("#batch-command", command)
    page.fill("#batch-concurrency", "10")
    page.click("#batch-preview-button")
    page.wait_for_selector("#batch-preview")
    if check is not None:
        check(page, "batch preview")
    page.click("#batch-start")
    page.wait_for_url(re.compile(r"/batches/\d+/$"))
    page.wait_for_function("() => !document.querySelector('#batch-live[hx-trigger]')", timeout=120_000)
    return page.url


def walk(browser, page_as, base: str, check: Callable[[object, str], None]) -> None:
    """Every page of the portal, as each role, in the states worth checking; `check(page, name)` on each.

    Every role sees the pages anyone can open by URL (what each finds there differs); the pages
    reached through links, the forms with errors and the run page as the roles that change them.
    """

    def visit(page, path: str) -> None:
        page.goto(base + path)
        check(page, path)

    def follow(page, path: str, link: str) -> None:
        page.goto(base + path)
        page.locator(link).first.click()
        page.wait_for_load_state("load")
        check(page, f"{path} → {link}")

    anonymous = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = anonymous.new_page()
        visit(page, "/login/")
        page.fill("#id_username", "viewer")
        page.fill("#id_password", "not the password")
        page.click("button[type=submit]")
        page.wait_for_selector(".alert-danger")
        check(page, "/login/ (refused)")
    finally:
        anonymous.close()

    for role in ROLES:
        page = page_as(role)
        if role == "operator":
            start_run(page, base, "echo accessible; printf 'line %s\\n' 1 2 3")
            page.wait_for_selector("#run-facts[data-finished='1']")
            check(page, "run page")
            start_batch(page, base, "echo accessible", check=check)
            check(page, "batch page")
        for path in PAGES + (APPROVER_PAGES if role in ("approver", "admin") else []):
            visit(page, path)
        if role == "approver":
            continue  # the approver's own pages: the inbox and a pending request (the test)
        follow(page, "/inventory/", "a:text-is('prod-web')")
        page.locator("td.mono a").first.click()
        page.wait_for_load_state("load")
        check(page, "task")
        if role == "operator":  # prod is a production account: shells by access request
            page.click("#shell-request-link")
            page.wait_for_url(re.compile(r"/shells/access/new/\?"))
            check(page, "shell access request form")
            page.fill("#shell-minutes", "100000")
            page.get_by_role("button", name="Ask for access").click()
            page.wait_for_selector(".invalid-feedback")
            check(page, "shell access request form (errors)")
        follow(page, "/stopped/", "#stopped-table a.task-link")
        follow(page, "/accounts/", "a:text-is('Acme Staging')")
        if role == "admin":
            page.locator("a[href$='/edit/']").first.click()
            page.wait_for_selector("#id_shell_access")
            check(page, "account form with the shell policy")
        follow(page, "/runs/", "a.run-link")
        follow(page, "/batches/", "#batch-table a")
        if role == "viewer":
            visit(page, "/stopped/?chart=7d&sort=-category")
        if role == "admin":
            for path in ADMIN_PAGES:
                visit(page, path)
            follow(page, "/runbooks/manage/", "a[href*='/runbooks/manage/']:text-matches('^(?!New)')")
            page.goto(base + "/accounts/new/")  # a form with errors, swapped in by htmx
            page.click("button:text('Add account')")
            page.wait_for_selector("#account-form .invalid-feedback")
            check(page, "/accounts/new/ (errors)")
            page.goto(base + "/runbooks/manage/new/")
            page.get_by_role("button", name="Create the runbook").click()
            page.wait_for_load_state("load")
            check(page, "/runbooks/manage/new/ (errors)")
        if role == "operator":
            page.goto(base + "/api/v1/docs/")  # the vendored Swagger UI, once it has drawn the operations
            page.wait_for_selector(".opblock")
            check(page, "/api/v1/docs/")
            page.goto(base + "/tokens/")  # a token form with errors, then a token shown once
            page.get_by_role("button", name="Create token").click()
            page.wait_for_selector(".text-danger")
            check(page, "/tokens/ (errors)")
            page.fill("#id_personal-name", "axe walk")
            page.locator("input[name='personal-accounts']").first.check()
            page.get_by_role("button", name="Create token").click()
            page.wait_for_selector("#new-token")
            check(page, "token created")
            visit(page, "/tokens/")  # the list with a token in it (its hidden "Actions" header once widened the page)
            visit(page, "/approvals/?mine=on")
            page.goto(base + "/runs/new/")  # an empty run form comes back with its errors
            page.click("#run-submit")
            page.wait_for_selector(".invalid-feedback")
            check(page, "/runs/new/ (errors)")
            page.goto(base + "/runbooks/")
            page.locator(".runbook-card", has_text="Tail a log file").get_by_role("link", name="Run…").click()
            page.wait_for_url(re.compile(r"/runbooks/\d+/$"))
            check(page, "runbook form")
            page.fill("#id_opt_path", "/etc/passwd")
            page.get_by_role("button", name="Run").click()
            page.wait_for_selector(".invalid-feedback")
            check(page, "runbook form (errors)")
            page.goto(base + "/stops/new/")
            page.get_by_role("button", name="Review the stop…").click()
            page.wait_for_selector(".invalid-feedback, .alert-danger")
            check(page, "/stops/new/ (errors)")


def test_every_page_passes_axe_and_reflows_at_320_px_as_each_role(browser, page_as, demo_server):
    """One walk, two checks per page: axe at 1400 px, then the same page at 320 px."""
    violations: list[str] = []
    wide: list[str] = []
    seen: list[str] = []

    def check(page, name: str) -> None:
        seen.append(name)
        violations.extend(axe_violations(page))
        if "{#" in page.inner_text("body"):  # a template comment over two lines is shown as text
            violations.append(f"{name}: a template comment shows on the page")
        page.set_viewport_size({"width": 320, "height": 900})
        over = sideways_overflow(page)
        if over > 0:
            wide.append(f"{name} ({page.url}) is {over} px wider than the window")
            screenshot(page, "reflow-" + re.sub(r"\W+", "-", name).strip("-"))
        page.set_viewport_size({"width": 1400, "height": 900})

    walk(browser, page_as, demo_server, check)

    # A request waiting for approval, seen by the operator who asked and the approver who decides.
    operator = page_as("operator")
    start_run(operator, demo_server, "echo approved", account="Acme Production", cluster="prod-web")
    operator.wait_for_selector("#run-approval a")
    check(operator, "run awaiting approval")
    approval = operator.locator("#run-approval a").get_attribute("href")
    approver = page_as("approver")
    approver.goto(f"{demo_server}/approvals/inbox/")
    approver.wait_for_selector("#inbox-waiting")
    check(approver, "inbox with a request")
    approver.goto(f"{demo_server}{approval}")
    check(approver, "pending approval")
    approver.fill("#decision-comment", "not now")
    approver.get_by_role("button", name="Reject").click()  # leaves nothing pending for other tests
    approver.wait_for_selector('#approval-card[data-status="rejected"]')
    check(approver, "rejected approval")

    # An interactive shell: its owner's page (typing), an observer's, and home listing it live.
    owner = page_as("operator")
    owner.goto(f"{demo_server}/runs/new/")
    pick_staging_app(owner)
    owner.click("#shell-submit")
    owner.wait_for_url(re.compile(r"/runs/\d+/$"))
    owner.wait_for_selector("#run-terminal[data-typing='1']", timeout=30000)
    check(owner, "shell (owner)")
    observer = page_as("viewer")
    observer.goto(owner.url)
    observer.wait_for_selector("#run-terminal[data-typing='0']", timeout=30000)
    check(observer, "shell (observer)")
    observer.goto(f"{demo_server}/")
    observer.wait_for_selector("#home-shells")
    check(observer, "home with a live shell")
    owner.click("#run-terminal")
    owner.keyboard.type("exit")
    owner.keyboard.press("Enter")
    owner.wait_for_selector("#run-facts[data-finished='1']", timeout=30000)

    assert len(seen) > 50
    assert violations == [], "\n".join(violations)
    assert wide == [], "\n".join(wide)


def test_every_category_colour_holds_white_text_at_4_5_to_1():
    css = (ROOT / "static/css/app.css").read_text()
    colours = dict(re.findall(r"\.cat-([\w-]+) \{ --cat: (#[0-9a-f]{6}); \}", css))
    assert set(colours) == set(categories.CATEGORIES), "every category has a colour"
    weak = {name: round(_contrast(colour, "#ffffff"), 2) for name, colour in colours.items()}
    assert {n: r for n, r in weak.items() if r < 4.5} == {}


def _contrast(one: str, other: str) -> float:
    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_chart_table_holds_every_bar_the_chart_draws():
    from datetime import UTC, datetime

    from ecsportal.stopped.chart import chart_build

    now = datetime(2026, 12, 6, 12, 30, tzinfo=UTC)
    hour = int(now.timestamp() // 3600)
    counts = {
        (hour, "out-of-memory"): 3,
        (hour - 1, "out-of-memory"): 1,
        (hour - 1, "deployment"): 2,
        (hour - 30, "exit-1"): 5,
    }
    chart = chart_build(window="24h", counts=counts, now=now)
    assert [c.id for c, _ in chart.legend] == ["out-of-memory", "deployment"]  # the 30-hour-old one is outside
    assert [(r.counts, r.total) for r in chart.rows] == [((1, 2), 3), ((3, 0), 3)]
    assert sum(r.total for r in chart.rows) == chart.total == 6
    assert chart.rows[-1].span.startswith("Sun 06 Dec 12:00")
