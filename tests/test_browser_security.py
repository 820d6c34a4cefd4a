"""In a real browser against `manage.py demo`: the audit page, and the login lockout message.

Screenshots land in var/screenshots/ (audit, audit-filtered, login-locked).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import ROOT, screenshot


def _clear_lockouts(tmp_path_factory) -> None:
    """Lift every lockout in the demo's database, as an admin would with `manage.py axes_reset`.
    The demo serves on loopback: a lockout of 127.0.0.1 would lock every later browser test out."""
    databases = {p.resolve() for p in tmp_path_factory.getbasetemp().glob("demo*/demo.sqlite3")}
    assert len(databases) == 1, databases
    env = {**os.environ, "DJANGO_DEBUG": "true", "DJANGO_SETTINGS_MODULE": "ecsportal.settings"}
    env["DATABASE_URL"] = f"sqlite:///{databases.pop()}"
    subprocess.run([sys.executable, "manage.py", "axes_reset"], cwd=ROOT, env=env, check=True, capture_output=True)


def test_the_login_page_says_until_when_after_too_many_failures(browser, demo_server, tmp_path_factory):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        for _ in range(12):  # the demo_server's limit is 10; earlier tests may have failed a login already
            page.goto(f"{demo_server}/login/")
            page.fill("#id_username", "mallory")
            page.fill("#id_password", "guess")
            page.click("button[type=submit]")
            page.wait_for_load_state("load")
            if page.locator("#login-locked").count():
                break
        locked = page.locator("#login-locked")
        assert locked.is_visible()
        text = locked.inner_text()
        assert "Too many failed logins" in text and "Try again after" in text and "15 minutes" in text
        assert re.search(r"Try again after \d\d:\d\d your time", text)  # the viewer's clock, not the server's
        assert page.input_value("#id_username") == "mallory"  # kept, the password never
        screenshot(page, "login-locked")
    finally:
        context.close()
        _clear_lockouts(tmp_path_factory)


def test_the_audit_page_filters_pages_and_exports(browser, page_as, demo_server):
    stranger = browser.new_context()
    login = stranger.new_page()
    login.goto(f"{demo_server}/login/")
    login.fill("#id_username", "eve")
    login.fill("#id_password", "guess")
    login.click("button[type=submit]")
    login.wait_for_selector(".alert-danger")
    stranger.close()
    page = page_as("admin")
    page.goto(f"{demo_server}/audit/")
    page.wait_for_selector("#audit-events table")
    assert page.locator("#audit-events td.mono", has_text="auth.login").count() >= 1
    screenshot(page, "audit")
    with page.expect_response(lambda r: "/audit/?" in r.url and "action=auth.login_failed" in r.url):
        page.fill("#audit-action", "auth.login_failed")
        page.press("#audit-action", "Enter")
    page.wait_for_function("() => location.search.includes('action=auth.login_failed')")
    actions = page.locator("#audit-events tbody td:nth-child(5)").all_inner_texts()
    assert actions and set(actions) == {"auth.login_failed"}  # the admin's own login is filtered out
    export = page.locator("#audit-events a[download]").get_attribute("href")
    assert export.startswith("/audit/export.csv?") and "action=auth.login_failed" in export
    with page.expect_download() as download:
        page.click("#audit-events a[download]")
    first_line = open(download.value.path()).readline()
    assert first_line.startswith("time,user,address,account")
    screenshot(page, "audit-filtered")
