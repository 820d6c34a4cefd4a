"""The on-call view in a real browser against `manage.py demo`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tests.conftest import screenshot


def test_a_viewer_filters_by_category_opens_a_task_and_reads_the_explanation(page_as, demo_server):
    page = page_as("viewer")
    page.goto(f"{demo_server}/stopped/")
    assert page.locator("#signatures .signature-row").count() > 3
    chart = page.locator("svg.stopped-chart")
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 50
    assert page.locator("svg.stopped-chart rect.bar").count() > 5
    screenshot(page, "stopped-list-1400")

    page.select_option("#f-category", "out-of-memory")
    page.wait_for_url(re.compile(r"category=out-of-memory"))
    page.wait_for_function(
        "() => [...document.querySelectorAll('#stopped-table .badge-cat')].every(b => b.textContent === 'Out of memory')"
    )
    badges = page.locator("#stopped-table .badge-cat")
    assert badges.count() >= 3
    screenshot(page, "stopped-filtered-oom")

    page.locator("#stopped-table a.task-link").first.click()
    page.wait_for_url(re.compile(r"/stopped/\d+/$"))
    explanation = page.locator("#explanation")
    assert "Out of memory" in explanation.inner_text()
    assert "First things to check" in explanation.inner_text()
    assert "memory limits" in explanation.inner_text()
    assert "SIGKILL" in page.locator("#containers").inner_text()
    screenshot(page, "stopped-detail")


def test_refresh_now_shows_progress_and_finishes(page_as, demo_server):
    page = page_as("viewer")
    page.goto(f"{demo_server}/stopped/")
    with page.expect_response(lambda r: r.url.endswith("/stopped/refresh/")) as answer:
        page.click("#refresh-now")
    assert "Collecting" in answer.value.text()  # the live progress, polled until the run ends
    page.wait_for_function("() => !document.querySelector('#stopped-status .spinner-border')", timeout=30000)
    assert re.search(r"\d+ of \d+ clusters? collected", page.locator("#stopped-status").inner_text())
    assert page.locator("#cluster-collections tbody tr").count() >= 5


def test_the_page_reads_on_a_narrow_laptop(page_as, demo_server):
    page = page_as("viewer")
    page.set_viewport_size({"width": 800, "height": 900})
    page.goto(f"{demo_server}/stopped/?chart=7d")
    assert page.locator("svg.stopped-chart rect.bar").count() > 10
    assert page.locator("#stopped-chart").bounding_box()["width"] <= 800
    screenshot(page, "stopped-list-800")


def _local_title(iso: str, zone: str, offset: timedelta, label: str) -> str:
    when = datetime.fromisoformat(iso).astimezone(UTC)
    local = (when + offset).strftime("%Y-%m-%d %H:%M:%S")
    return f"{local} your time ({zone}, {label})\n{when:%Y-%m-%d %H:%M:%S} UTC"


def test_times_show_the_viewer_s_own_time_and_utc_on_hover_also_after_an_htmx_swap(browser, demo_server):
    context = browser.new_context(timezone_id="Asia/Tokyo", viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(15000)
        page.goto(f"{demo_server}/login/")
        page.fill("#id_username", "viewer")
        page.fill("#id_password", "demo")
        page.click("button[type=submit]")
        page.wait_for_url(f"{demo_server}/")
        page.goto(f"{demo_server}/stopped/")
        first = page.locator("#stopped-table time").first
        expected = _local_title(first.get_attribute("datetime"), "Asia/Tokyo", timedelta(hours=9), "UTC+09:00")
        assert first.get_attribute("title") == expected
        assert re.fullmatch(r"\d+\s\w+(,\s\d+\s\w+)? ago|now", first.inner_text().replace("\xa0", " "))

        page.select_option("#f-range", "all")  # the table is swapped in by htmx
        page.wait_for_url(re.compile(r"range=all"))
        page.wait_for_function("() => !document.querySelector('#stopped-results.is-refreshing')")
        swapped = page.locator("#stopped-table time").last
        page.wait_for_function("el => el.title.includes('your time (Asia/Tokyo')", arg=swapped.element_handle())
        assert swapped.get_attribute("title").endswith(" UTC")
    finally:
        context.close()
