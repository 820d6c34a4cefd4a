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
