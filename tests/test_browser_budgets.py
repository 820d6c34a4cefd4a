"""In a real browser against `manage.py demo`: a page whose live socket is over the user's
socket budget says why (ECSPORTAL_SOCKETS_PER_USER: 20 in the tests' demo server)."""

from __future__ import annotations

from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import screenshot

INBOX = "/ws/approvals/inbox/"


def _fill_the_budget(base: str, cookie: str) -> list:
    """Open inbox sockets as this user until the server refuses one with 4429; keep the rest."""
    host = urlsplit(base).netloc
    held = []
    for _ in range(40):
        socket = connect(
            f"ws://{host}{INBOX}", origin=base, additional_headers={"Cookie": cookie}, open_timeout=10, legacy=True
        )
        try:
            socket.recv(timeout=0.5)
        except TimeoutError:
            held.append(socket)  # accepted and still open: a place taken
            continue
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 4429, closed
            return held
    raise AssertionError("40 sockets and none refused")


def test_a_page_over_the_socket_budget_says_to_close_some_tabs(page_as, demo_server):
    first_tab = page_as("approver")
    first_tab.goto(f"{demo_server}/approvals/")
    first_tab.wait_for_selector("body[data-live-approvals-inbox='open']")
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in first_tab.context.cookies() if c["name"] == "sessionid")
    held = _fill_the_budget(demo_server, cookie)
    try:
        page = first_tab.context.new_page()  # one tab too many
        page.goto(f"{demo_server}/approvals/")
        banner = page.locator("#request-error")
        banner.wait_for(state="visible")
        assert "Too many open portal tabs or live pages for your user" in banner.inner_text()
        assert page.locator("body[data-live-approvals-inbox='too-many-sockets']").count() == 1
        screenshot(page, "socket-budget")
        page.set_viewport_size({"width": 320, "height": 700})
        screenshot(page, "socket-budget-320")
    finally:
        for socket in held:
            socket.close()
    page.reload()  # places given back: the tab's socket opens again
    page.wait_for_selector("body[data-live-approvals-inbox='open']")
    assert page.locator("#request-error").is_hidden()
