"""A real browser (Playwright + Debian's Chromium) against `manage.py demo`.

Screenshots land in var/screenshots/ for people to look at.
"""

from __future__ import annotations

import re

from tests.conftest import screenshot


def choose(page, select: str, *, label: str | None = None, value: str | None = None) -> None:
    """Pick an option and wait for the picker's HTMX swap to settle.

    A person cannot choose before the page has loaded; a test can, before htmx listens."""
    page.wait_for_load_state("load")
    with page.expect_response(re.compile(r"/inventory/pick/\?")):
        if label is not None:
            page.select_option(select, label=label)
        else:
            page.select_option(select, value=value)
    page.wait_for_selector(f"{select}:not([disabled])")


def test_viewer_picks_a_container_and_sees_its_readiness(page_as):
    page = page_as("viewer")
    page.click("text=Inventory")
    page.wait_for_selector("a:text-is('prod-web')")
    page.click("text=Pick a container")
    choose(page, "#pick-account", label="Acme Production (123456789012)")
    page.wait_for_selector("#pick-region:not([disabled])")
    choose(page, "#pick-region", value="eu-west-1")
    page.wait_for_selector("#pick-cluster:not([disabled])")
    choose(page, "#pick-cluster", value="prod-web")
    page.wait_for_selector("#pick-task:not([disabled])")
    web_task = page.locator("#pick-task option", has_text="web · web:1").first.get_attribute("value")
    choose(page, "#pick-task", value=web_task)
    page.wait_for_selector("#pick-container:not([disabled])")
    choose(page, "#pick-container", value="app")
    badge = page.locator("#pick-readiness .badge")
    assert badge.inner_text() == "exec ready"
    screenshot(page, "picker-ready")
    canary = page.locator("#pick-task option", has_text="web-canary").first.get_attribute("value")
    choose(page, "#pick-task", value=canary)
    assert page.locator("#pick-readiness .badge").inner_text() == "exec not ready"
    assert "pending" in page.locator("#pick-readiness").inner_text()
    screenshot(page, "picker-not-ready")


def test_login_page(browser, demo_server):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{demo_server}/login/")
    page.fill("#id_username", "viewer")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    page.wait_for_selector(".alert-danger")
    screenshot(page, "login")
    context.close()


def test_inventory_pages_render(page_as):
    page = page_as("viewer")
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(page.url + "inventory/")
    page.wait_for_selector("a:text-is('staging-eu')")
    screenshot(page, "inventory-overview")
    page.click("a:text-is('prod-web')")
    page.wait_for_selector("text=Running tasks")
    assert page.locator(".badge:text-is('exec ready')").count() == 2
    screenshot(page, "inventory-cluster")
    page.locator("td.mono a").first.click()
    page.wait_for_selector("text=Containers")
    screenshot(page, "inventory-task")
    assert errors == [], f"browser console errors (a CSP violation?): {errors}"


def test_admin_pages_render(page_as):
    page = page_as("admin")
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.click("text=Accounts")
    page.click("a:text-is('Acme Staging')")
    page.click("text=Test connection")
    page.wait_for_selector("#connection-result .alert")
    assert "210987654321" in page.locator("#connection-result").inner_text()
    screenshot(page, "account-detail")
    page.goto(page.url.split("/accounts/")[0] + "/accounts/new/")
    page.fill("#id_name", "Broken")
    page.fill("#id_account_id", "12345")
    page.fill("#id_regions", "cn-north-1")
    page.fill("#id_role_arn", "arn:aws:iam::999999999999:role/x")
    page.fill("#id_external_id", "bad id#1")
    page.click("button:text('Add account')")
    page.wait_for_selector(".invalid-feedback")
    text = page.locator("#account-form").inner_text()
    assert "exactly 12 digits" in text
    assert "aws-cn" in text
    assert "' ' '#'" in text
    screenshot(page, "account-form-errors")
    assert errors == [], f"browser console errors (a CSP violation?): {errors}"


def test_access_key_fields_show_only_for_the_stored_key_source(page_as, demo_server):
    page = page_as("admin")
    page.goto(f"{demo_server}/accounts/new/")
    page.wait_for_load_state("load")
    assert not page.is_visible("#id_secret_access_key")
    page.select_option("#id_credential_source", "keys")
    assert page.is_visible("#id_access_key_id") and page.is_visible("#id_secret_access_key")
    page.select_option("#id_credential_source", "default")
    assert not page.is_visible("#id_access_key_id")
