"""What the browser shows when a request goes wrong (static/js/app.js, static/js/live.js).

Against `manage.py demo`, like every browser test: a decision on a request cancelled
meanwhile (409), a misspelt member (422), failures without a fragment, the dimmed region
while it refreshes, and the live socket giving up once the session has ended.
"""

from __future__ import annotations

import re

from tests.conftest import screenshot

# Keeps every WebSocket this page opens, so a test can drop one (init scripts run before the
# page's own, and Playwright injects them whatever the CSP says).
KEEP_SOCKETS = """
(() => {
  const Original = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = function (url, protocols) {
    const socket = protocols === undefined ? new Original(url) : new Original(url, protocols);
    window.__sockets.push(socket);
    return socket;
  };
  window.WebSocket.prototype = Original.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
})();
"""


def _ask_to_stop_a_prod_edge_task(operator, demo_server: str) -> str:
    operator.goto(f"{demo_server}/inventory/")
    operator.get_by_role("link", name="prod-edge", exact=True).click()
    operator.wait_for_selector("h1:has-text('prod-edge')")
    operator.locator("a.stop-button").first.click()
    operator.wait_for_url(re.compile(r"/stops/new/\?"))
    operator.fill("#stop-reason", "checking what the approver sees when I change my mind")
    operator.get_by_role("button", name="Review the stop…").click()
    operator.get_by_role("button", name="Ask for approval to stop").click()
    operator.wait_for_url(re.compile(r"/approvals/\d+/$"))
    return re.search(r"/approvals/(\d+)/$", operator.url).group(1)


def test_approving_a_request_cancelled_meanwhile_shows_why_on_the_card(page_as, demo_server):
    operator = page_as("operator")
    pk = _ask_to_stop_a_prod_edge_task(operator, demo_server)

    approver = page_as("approver")
    approver.route_web_socket(re.compile(r".*"), lambda socket: None)  # no live update: the race is real
    approver.goto(f"{demo_server}/approvals/{pk}/")
    approver.wait_for_selector(".decision-form")

    operator.once("dialog", lambda dialog: dialog.accept())
    operator.get_by_role("button", name="Cancel request").click()
    operator.wait_for_selector('#approval-card[data-status="cancelled"]')

    approver.get_by_role("button", name="Approve").click()
    approver.wait_for_selector('#approval-card[data-status="cancelled"]')
    assert "This request is already cancelled." in approver.inner_text("#approval-card .alert-warning")
    assert approver.locator(".decision-form").count() == 0
    assert approver.is_hidden("#request-error")
    screenshot(approver, "feedback-01-approve-after-cancel-409")


def test_a_misspelt_member_shows_the_form_error(page_as, demo_server):
    admin = page_as("admin")
    admin.goto(f"{demo_server}/accounts/")
    admin.get_by_role("link", name="Acme Production").click()
    admin.fill("#id_member_username", "opertor")
    admin.get_by_role("button", name="Add").click()
    admin.wait_for_selector("#member-form .invalid-feedback")
    assert "No active user is called “opertor”." in admin.inner_text("#member-form .invalid-feedback")
    assert "is-invalid" in admin.get_attribute("#id_member_username", "class")
    screenshot(admin, "feedback-02-member-misspelt-422")


def test_failures_without_a_fragment_show_the_banner(page_as, demo_server):
    viewer = page_as("viewer")
    viewer.goto(f"{demo_server}/approvals/")
    viewer.route(
        re.compile(r"/approvals/\?status=pending"), lambda route: route.fulfill(status=502, body="Bad gateway")
    )
    viewer.select_option("select[name=status]", "pending")
    viewer.wait_for_selector("#request-error:visible")
    assert "The server could not complete this request (502). Try again" in viewer.inner_text("#request-error")
    screenshot(viewer, "feedback-03-banner-502")
    viewer.click("#request-error .btn-close")
    assert viewer.is_hidden("#request-error")

    viewer.route(re.compile(r"/approvals/\?status=executed"), lambda route: route.abort())
    viewer.select_option("select[name=status]", "executed")
    viewer.wait_for_selector("#request-error:visible")
    assert "The server could not be reached." in viewer.inner_text("#request-error")


def test_an_expired_session_never_swaps_the_login_page_into_a_fragment(page_as, demo_server):
    viewer = page_as("viewer")
    viewer.goto(f"{demo_server}/approvals/")
    viewer.context.clear_cookies()
    viewer.select_option("select[name=status]", "rejected")
    viewer.wait_for_selector("#request-error:visible")
    assert "Your session has ended — log in again" in viewer.inner_text("#request-error")
    assert viewer.locator("#requests #id_password").count() == 0
    assert viewer.get_attribute(".request-error-login", "href").startswith("/login/?next=")


def test_the_region_being_refreshed_is_dimmed_until_the_answer_arrives(page_as, demo_server):
    viewer = page_as("viewer")
    viewer.goto(f"{demo_server}/approvals/")
    held = []
    viewer.route(re.compile(r"/approvals/\?status=failed"), lambda route: held.append(route))  # answered below
    viewer.select_option("select[name=status]", "failed")
    viewer.wait_for_selector("#requests.is-refreshing[aria-busy=true]")
    viewer.wait_for_function("() => getComputedStyle(document.getElementById('requests')).opacity === '0.45'")
    screenshot(viewer, "feedback-04-dimmed-while-refreshing")
    held[0].continue_()
    viewer.wait_for_selector("#requests:not(.is-refreshing)")


def test_live_updates_stop_and_say_so_once_the_session_has_ended(page_as, demo_server):
    approver = page_as("approver")
    approver.add_init_script(KEEP_SOCKETS)
    approver.goto(f"{demo_server}/approvals/inbox/")
    approver.wait_for_selector("body[data-live-approvals-inbox=open]", state="attached")
    approver.context.clear_cookies()  # the session is gone; the open socket does not know yet
    approver.evaluate("window.__sockets.forEach((s) => s.close())")
    approver.wait_for_selector("body[data-live-approvals-inbox=session-ended]", state="attached")
    assert "Your session has ended — log in again" in approver.inner_text("#request-error")
    attempts = approver.evaluate("window.__sockets.length")
    assert attempts == 2  # dropped, then refused before the handshake: it asked /session and stopped
    screenshot(approver, "feedback-05-live-session-ended")


def test_viewers_are_not_offered_a_stop_and_are_told_why(page_as, demo_server):
    viewer = page_as("viewer")
    viewer.goto(f"{demo_server}/approvals/")
    assert viewer.locator("#request-stop").count() == 0
    viewer.goto(f"{demo_server}/stops/new/")
    assert "Stopping a task needs the operator role" in viewer.inner_text("#operator-needed")
    screenshot(viewer, "feedback-06-viewer-stop-page")
    operator = page_as("operator")
    operator.goto(f"{demo_server}/approvals/")
    assert operator.locator("#request-stop").count() == 1


def test_cluster_and_task_pages_lead_back_to_the_inventory(page_as, demo_server):
    viewer = page_as("viewer")
    viewer.goto(f"{demo_server}/inventory/")
    viewer.get_by_role("link", name="prod-edge", exact=True).click()
    viewer.wait_for_selector("h1:has-text('prod-edge')")
    crumbs = viewer.locator(".breadcrumb-item")
    assert crumbs.first.inner_text() == "Inventory"
    screenshot(viewer, "feedback-07-cluster-breadcrumb")
    crumbs.first.click()
    viewer.wait_for_url(f"{demo_server}/inventory/")
