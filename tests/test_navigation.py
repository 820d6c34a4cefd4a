"""The navigation marks the section a page belongs to, one way for every item."""

from __future__ import annotations

import re

import pytest

from ecsportal.context_processors import nav_section

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "section"),
    [("/inventory/1/eu-west-1/web/", "inventory"), ("/stopped/", "stopped"), ("/stops/new/", "approvals"), ("/", "")]
    + [("/runs/", "runs"), ("/runs/7/", "runs"), ("/runs/new/", "runs-new")],
)
def test_a_page_belongs_to_the_section_of_its_first_path_segment(path, section):
    assert nav_section(path) == section


def test_only_the_current_section_is_active(cast, login):
    page = login(cast.admin).get("/stopped/").content.decode()
    active = re.findall(r'class="nav-link active"[^>]*>([^<]+)<', page)
    assert active == ["Stopped tasks"]


def test_running_a_command_and_the_run_history_are_two_items(cast, login):
    client = login(cast.operator)
    assert re.findall(r'class="nav-link active"[^>]*>([^<]+)<', client.get("/runs/new/").content.decode()) == [
        "Run a command"
    ]
    assert re.findall(r'class="nav-link active"[^>]*>([^<]+)<', client.get("/runs/").content.decode()) == ["Runs"]


def test_the_approvals_item_is_active_on_the_stop_form(cast, login):
    client = login(cast.operator)
    answer = client.get(
        "/approvals/nav/", headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/stops/new/"}
    )
    assert 'class="nav-link active"' in answer.content.decode()
    answer = client.get(
        "/approvals/nav/", headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/stopped/"}
    )
    assert "active" not in answer.content.decode()
