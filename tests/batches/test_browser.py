"""The batch pages in a real browser against the demo server: an operator previews and runs a
command on every task of the demo's "fleet" service; a viewer watches the same batch."""

from __future__ import annotations

import re

from ecsportal.demo.localaws import FLEET_TASKS
from tests.conftest import screenshot


def _batch_on_fleet(page, base: str, command: str) -> str:
    page.goto(f"{base}/batches/new/")
    page.select_option("#batch-accounts", label="Acme Staging")
    page.fill("#batch-region", "eu-west-1")
    page.fill("#batch-cluster", "staging")
    page.fill("#batch-service", "fleet")
    page.fill("#batch-command", command)
    page.fill("#batch-concurrency", "8")
    page.click("#batch-preview-button")
    page.wait_for_selector("#batch-preview")
    return page.url


def test_an_operator_previews_runs_and_reads_the_groups_and_a_viewer_watches(page_as, demo_server):
    page = page_as("operator")
    _batch_on_fleet(page, demo_server, "echo same on every task")
    assert page.locator("#batch-preview-title").inner_text().startswith(f"Preview: {FLEET_TASKS} ready")
    assert page.locator("#batch-preview-targets tbody tr").count() == FLEET_TASKS
    screenshot(page, "batch-preview")
    page.click("#batch-start")
    page.wait_for_url(re.compile(r"/batches/\d+/$"))
    url = page.url
    # Live: the page polls until every target has ended, then the one group reads at a glance.
    page.wait_for_selector(".batch-group-sentence", timeout=120_000)
    page.wait_for_function(
        "() => !document.querySelector('#batch-live[hx-trigger]')", timeout=120_000
    )  # finished: no more polling
    sentence = page.locator(".batch-group-sentence").first.inner_text()
    assert sentence == f"{FLEET_TASKS} targets exited 0 with the same output"
    assert "same on every task" in page.locator(".batch-output").first.inner_text()
    assert page.locator("#batch-targets tbody tr[data-outcome='succeeded']").count() == FLEET_TASKS
    assert page.locator("#batch-cancel").count() == 0  # finished: nothing to cancel
    assert page.locator("#batch-transcript").count() == 1
    screenshot(page, "batch-finished")

    viewer = page_as("viewer")
    viewer.goto(url)
    assert viewer.locator("#batch-targets tbody tr").count() == FLEET_TASKS
    assert viewer.locator(".batch-group-sentence").first.inner_text() == sentence
    assert viewer.locator("#batch-transcript").count() == 0  # output downloads are operators'
    assert viewer.locator("#batch-rerun").count() == 0
    screenshot(viewer, "batch-viewer")
    viewer.goto(f"{demo_server}/batches/new/")
    assert "cannot run commands on any account" in viewer.locator("#batch-no-accounts").inner_text()


def test_cancel_all_from_the_page(page_as, demo_server):
    page = page_as("operator")
    _batch_on_fleet(page, demo_server, "sleep 60")
    page.fill("#batch-concurrency", "2")
    page.click("#batch-preview-button")
    page.wait_for_selector("#batch-preview")
    page.click("#batch-start")
    page.wait_for_url(re.compile(r"/batches/\d+/$"))
    page.wait_for_selector("#batch-targets tr[data-outcome='running']", timeout=60_000)
    page.click("#batch-cancel")
    page.wait_for_selector("#batch-end-reason", timeout=60_000)
    assert page.locator("#batch-end-reason").inner_text().startswith("Cancelled by operator")
    assert page.locator("#batch-targets tr[data-outcome='running']").count() == 0
    screenshot(page, "batch-cancelled")
