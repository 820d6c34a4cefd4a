"""The home dashboard in a real browser against `manage.py demo`: two people, the panels follow live.

The operator asks to stop a prod-batch task (no other browser test touches prod-batch); the
approver's dashboard shows it without a reload, the approver rejects it, and the operator's
dashboard drops it without a reload. Nothing is stopped.
"""

from __future__ import annotations

import re

from tests.conftest import screenshot


def test_the_dashboard_follows_a_request_live_for_both_people(page_as, demo_server):
    approver = page_as("approver")
    errors: list[str] = []
    approver.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    approver.goto(f"{demo_server}/")
    approver.wait_for_selector("body[data-live-approvals-inbox=open]", state="attached")
    assert approver.locator("#failures-day tr.failure-row").count() > 0  # the demo's week of history
    screenshot(approver, "dashboard-01-approver")

    operator = page_as("operator")
    operator.goto(f"{demo_server}/inventory/")
    operator.get_by_role("link", name="prod-batch", exact=True).first.click()
    operator.wait_for_selector("h1:has-text('prod-batch')")
    operator.locator("a.stop-button").first.click()
    operator.wait_for_url(re.compile(r"/stops/new/\?"))
    operator.fill("#stop-reason", "batch worker wedged on a lock since the failover")
    operator.get_by_role("button", name="Review the stop…").click()
    operator.get_by_role("button", name="Ask for approval to stop").click()
    operator.wait_for_url(re.compile(r"/approvals/\d+/$"))
    pk = re.search(r"/approvals/(\d+)/$", operator.url).group(1)

    approver.wait_for_selector(f'#home-waiting li[data-request="{pk}"]')  # no reload
    screenshot(approver, "dashboard-02-approver-sees-the-request-live")

    operator.goto(f"{demo_server}/")
    operator.wait_for_selector(f'#home-mine li[data-request="{pk}"]')
    operator.wait_for_selector("body[data-live-home-mine=open]", state="attached")
    assert operator.locator("#home-waiting").count() == 0  # operators decide nothing
    screenshot(operator, "dashboard-03-operator-own-request")

    approver.click(f'#home-waiting li[data-request="{pk}"] a')
    approver.wait_for_selector(".decision-form")
    approver.fill("#decision-comment", "not during the batch window")
    approver.get_by_role("button", name="Reject").click()
    approver.wait_for_selector('#approval-card[data-status="rejected"]')

    operator.wait_for_selector("#home-mine-empty")  # no reload
    screenshot(operator, "dashboard-04-operator-after-rejection")
    approver.goto(f"{demo_server}/")
    approver.wait_for_selector("#home-waiting-empty, #home-waiting")
    assert approver.locator(f'#home-waiting li[data-request="{pk}"]').count() == 0
    assert [e for e in errors if "Content Security Policy" in e] == []


def test_a_viewer_s_dashboard_renders(page_as, demo_server):
    viewer = page_as("viewer")
    viewer.wait_for_selector("#panel-failures")
    assert viewer.locator("#home-waiting, #home-waiting-empty").count() == 0
    assert viewer.locator("#home-mine-empty").count() == 1
    screenshot(viewer, "dashboard-05-viewer")
