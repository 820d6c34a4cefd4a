"""Two people, two browsers: the operator asks, the approver sees it arrive live and approves.

Runs against `manage.py demo` (shared by every browser test of the session), on a prod-edge
`api` task in us-east-1 that no other test stops.
"""

from __future__ import annotations

import re

from tests.conftest import screenshot


def test_operator_asks_approver_approves_live_and_the_task_stops_with_the_reason(page_as, demo_server):
    approver = page_as("approver")
    approver.goto(f"{demo_server}/approvals/inbox/")
    approver.wait_for_selector("body[data-live-approvals-inbox=open]", state="attached")

    operator = page_as("operator")
    operator.goto(f"{demo_server}/inventory/")
    operator.get_by_role("link", name="prod-edge", exact=True).click()
    operator.wait_for_selector("h1:has-text('prod-edge')")
    screenshot(operator, "approvals-01-cluster-with-stop-buttons")
    operator.locator("a.stop-button").first.click()
    operator.wait_for_url(re.compile(r"/stops/new/\?"))
    stop_form_url = operator.url
    task_id = re.search(r"task=([\w-]+)", stop_form_url).group(1)
    account_pk = re.search(r"account=(\d+)", stop_form_url).group(1)
    operator.fill("#stop-reason", "api task stuck draining connections after the spot interruption")
    screenshot(operator, "approvals-02-stop-form")
    operator.get_by_role("button", name="Review the stop…").click()
    operator.wait_for_selector("#consequences")
    assert "the service scheduler will start a replacement" in operator.inner_text("#consequences")
    screenshot(operator, "approvals-03-confirm")
    operator.get_by_role("button", name="Ask for approval to stop").click()
    operator.wait_for_url(re.compile(r"/approvals/\d+/$"))
    request_pk = re.search(r"/approvals/(\d+)/$", operator.url).group(1)
    operator.wait_for_selector("body[data-live-approval-changed=open]", state="attached")
    assert operator.get_attribute("#approval-card", "data-status") == "pending"

    # The approver did not reload: the request arrives in the inbox and the navigation count.
    approver.wait_for_selector(f'#inbox-waiting tr[data-request="{request_pk}"]')
    approver.wait_for_selector("#inbox-count")
    assert approver.inner_text("#inbox-count") == "1"
    screenshot(approver, "approvals-04-inbox-live")

    approver.click(f'#inbox-waiting tr[data-request="{request_pk}"] a >> nth=0')
    approver.wait_for_selector(".decision-form")
    approver.fill("#decision-comment", "ok, the scheduler replaces it")
    approver.get_by_role("button", name="Approve").click()
    approver.wait_for_selector('#approval-card[data-status="executed"]')
    screenshot(approver, "approvals-05-approved")

    # The operator's page follows without a reload.
    operator.wait_for_selector('#approval-card[data-status="executed"]')
    assert "ECS accepted the stop" in operator.inner_text("#approval-result")
    assert "approver" in operator.inner_text("#decisions")
    screenshot(operator, "approvals-06-operator-sees-executed")

    operator.click("#target-link")
    operator.wait_for_url(f"{demo_server}/inventory/{account_pk}/us-east-1/prod-edge/tasks/{task_id}/")
    assert "stopped" in operator.inner_text(".facts .badge >> nth=0")
    reason = operator.inner_text("#stopped-reason")
    assert f"ecsportal #{request_pk}: api task stuck draining connections" in reason
    assert "(requested by operator, approved by approver)" in reason
    assert operator.locator("a.stop-button").count() == 0
    screenshot(operator, "approvals-07-task-stopped")
