"""Shell access in real browsers against `manage.py demo`: the operator asks from the task page
of a production task, an approver approves in another browser, and the task page then says until
when the operator has shell access (opening the shell itself is the shell runtime's)."""

from __future__ import annotations

import re

from tests.conftest import screenshot


def _prod_task(page, base: str) -> str:
    page.goto(f"{base}/inventory/")
    page.locator("a:text-is('prod-web')").first.click()
    page.wait_for_load_state("load")
    page.locator("td.mono a").first.click()
    page.wait_for_url(re.compile(r"/tasks/[\w-]+/$"))
    return page.url


def test_an_access_request_approved_in_another_browser_shows_the_grant_on_the_task_page(page_as, demo_server):
    operator = page_as("operator")
    task_url = _prod_task(operator, demo_server)
    assert "need an approved access request" in operator.text_content("#shell-access")
    operator.click("#shell-request-link")
    operator.wait_for_url(re.compile(r"/shells/access/new/\?"))
    operator.select_option("#shell-container", "envoy")  # a grant other tests of this demo will not meet
    operator.fill("#shell-minutes", "2")
    operator.fill("#shell-reason", "envoy drops upstream connections; need to look at its admin port")
    operator.get_by_role("button", name="Ask for access").click()
    operator.wait_for_url(re.compile(r"/approvals/\d+/$"))
    request_url = operator.url
    operator.goto(task_url)
    assert re.search(r"Your request #\d+ for a shell is waiting for approval", operator.text_content("#shell-access"))

    approver = page_as("approver")
    approver.goto(f"{demo_server}/approvals/inbox/")
    approver.wait_for_selector("#inbox-waiting")
    assert "Shell access" in approver.text_content("#inbox-waiting")
    approver.goto(request_url)
    assert "may open interactive shells" in approver.text_content("main")
    approver.get_by_role("button", name="Approve").click()
    approver.wait_for_selector('#approval-card[data-status="executed"]')

    operator.goto(task_url)
    text = " ".join(operator.text_content("#shell-access").split())
    assert re.search(r"You have shell access to container envoy until \d\d:\d\d UTC\.", text), text
    screenshot(operator, "shell-access-granted")


def test_a_granted_production_shell_opens_takes_input_and_ends_when_the_membership_is_removed(page_as, demo_server):
    """The whole production path: ask, an approver grants in another browser, the shell opens
    from the task page and answers; the admin removes the operator from the account and the
    shell's page says "Access revoked" while the session ends with that reason."""
    from tests.runs.test_browser_shell import WAIT, _type, _wait_for_line

    operator = page_as("operator")
    task_url = _prod_task(operator, demo_server)
    operator.click("#shell-request-link")
    operator.wait_for_url(re.compile(r"/shells/access/new/\?"))
    operator.select_option("#shell-container", "app")
    operator.fill("#shell-minutes", "5")
    operator.fill("#shell-reason", "app is stuck on a lock; need a shell to read /proc")
    operator.get_by_role("button", name="Ask for access").click()
    operator.wait_for_url(re.compile(r"/approvals/\d+/$"))
    request_url = operator.url

    approver = page_as("approver")
    approver.goto(request_url)
    approver.get_by_role("button", name="Approve").click()
    approver.wait_for_selector('#approval-card[data-status="executed"]')

    operator.goto(task_url)
    row = operator.locator("tr", has=operator.locator("td", has_text=re.compile(r"^app$")))
    row.locator("button.shell-button").click()
    operator.wait_for_url(re.compile(r"/runs/\d+/$"), timeout=WAIT)
    operator.wait_for_selector("#run-terminal[data-typing='1']", timeout=WAIT)
    shell_url = operator.url
    _type(operator, "echo $((6*7))")
    _wait_for_line(operator, "42")

    admin = page_as("admin")
    admin.goto(f"{demo_server}/accounts/")
    admin.click("a:has-text('Acme Production')")
    admin.wait_for_url(re.compile(r"/accounts/\d+/$"))
    account_url = admin.url
    member = admin.locator("tr", has=admin.locator("bdi", has_text=re.compile(r"^operator$")))
    admin.once("dialog", lambda dialog: dialog.accept())
    member.locator("button", has_text="Remove").click()
    admin.wait_for_load_state("load")
    try:
        operator.wait_for_selector("#run-connection[data-state='refused']", timeout=WAIT)
        assert operator.text_content("#run-connection").startswith("Access revoked")
        screenshot(operator, "shell-access-revoked")
        admin.goto(shell_url)  # the admin still sees the run: it ended, saying why
        admin.wait_for_function("() => /Access revoked/.test(document.querySelector('main').textContent)", timeout=WAIT)
    finally:
        admin.goto(account_url)
        admin.fill("#id_member_username", "operator")
        admin.select_option("#id_member_role", label="Operator")
        admin.click("#member-form button[type=submit]")
        admin.wait_for_selector("bdi:text-is('operator')")
