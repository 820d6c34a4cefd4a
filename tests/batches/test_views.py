"""The batch pages through Django's test client: the form and its preview, start, the gate."""

from __future__ import annotations

import json
import re

import pytest

from ecsportal.batches import scheduler
from ecsportal.batches.models import Batch, BatchTarget
from tests.batches.conftest import BATCH_REGION

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_scheduler(monkeypatch):
    """Batches started here are only looked at, never run (the end-to-end tests run them)."""
    monkeypatch.setattr(scheduler, "kick", lambda pk: None)


def _form(lab, **extra):
    data = {
        "accounts": [str(lab.account.pk)],
        "region": BATCH_REGION,
        "cluster": lab.cluster,
        "service": "web",
        "command": "cat /etc/hostname",
        "concurrency": "5",
        "stop_after": "0",
    }
    data.update(extra)
    return data


def test_a_viewer_is_told_that_starting_needs_the_operator_role(client, batch_lab, no_scheduler):
    client.force_login(batch_lab.cast.viewer)
    # The viewer is an operator nowhere in this lab… but the demo accounts give "viewer" only viewer.
    response = client.get("/batches/new/")
    assert response.status_code == 403
    assert b"needs the operator role" in response.content
    response = client.post("/batches/new/", _form(batch_lab, action="start"))
    assert response.status_code == 403
    assert Batch.objects.count() == 0


def test_the_preview_shows_ready_and_skipped_and_start_insists_on_it(client, batch_lab, no_scheduler):
    lab = batch_lab
    ready = [lab.task() for _ in range(2)]
    off = lab.task(exec_enabled=False)
    client.force_login(lab.cast.operator)
    response = client.post("/batches/new/", _form(lab, action="preview"), headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Preview: 2 ready, 1 skipped" in html
    assert all(arn.rsplit("/", 1)[-1] in html for arn in [*ready, off])
    assert "ECS Exec was not enabled" in html
    shown = response.context["preview"].targets_sha256
    assert f'value="{shown}"' in html  # Start sends back the list it showed
    lab.task()  # a new task: the list is no longer the one previewed
    response = client.post(
        "/batches/new/", _form(lab, action="start", targets_sha256=shown), headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    assert "changed since the preview" in response.content.decode()
    assert Batch.objects.count() == 0
    response = client.post("/batches/new/", _form(lab, action="preview"), headers={"HX-Request": "true"})
    fresh = response.context["preview"].targets_sha256
    response = client.post(
        "/batches/new/", _form(lab, action="start", targets_sha256=fresh), headers={"HX-Request": "true"}
    )
    batch = Batch.objects.get()
    assert response.status_code == 200 and response["HX-Redirect"] == f"/batches/{batch.pk}/"
    assert BatchTarget.objects.filter(batch=batch, in_target_list=True).count() == 3


def test_bad_options_come_back_with_what_to_fix(client, batch_lab, no_scheduler):
    client.force_login(batch_lab.cast.operator)
    response = client.post("/batches/new/", _form(batch_lab, concurrency="99", action="preview"))
    assert response.status_code == 422
    assert "less than or equal to 50" in response.content.decode()


def test_who_sees_a_batch_and_what_they_may_do_there(client, batch_lab, no_scheduler):
    from ecsportal.batches import services
    from tests.batches.conftest import spec_for

    lab = batch_lab
    lab.task()
    batch = services.batch_start(
        user=lab.cast.operator, spec=spec_for(lab), command="echo hi", options=services.BatchOptions()
    )
    client.force_login(lab.cast.operator)
    html = client.get(f"/batches/{batch.pk}/").content.decode()
    assert 'id="batch-cancel"' in html and 'id="batch-transcript"' in html
    client.force_login(lab.cast.viewer)
    response = client.get(f"/batches/{batch.pk}/")
    assert response.status_code == 200
    assert 'id="batch-cancel"' not in response.content.decode()
    assert client.post(f"/batches/{batch.pk}/cancel/").status_code == 403
    assert client.get(f"/batches/{batch.pk}/transcript.txt").status_code == 403
    summary = json.loads(client.get(f"/batches/{batch.pk}/summary.json").content)
    assert summary["batch"] == batch.pk and len(summary["targets"]) == 1
    listing = client.get("/batches/").content.decode()
    assert f"/batches/{batch.pk}/" in listing and '<td class="text-end">1</td>' in listing  # its one target
    client.force_login(lab.cast.outsider)
    assert client.get(f"/batches/{batch.pk}/").status_code == 404
    assert client.get(f"/batches/{batch.pk}/summary.json").status_code == 404
    assert f"/batches/{batch.pk}/" not in client.get("/batches/").content.decode()


def test_a_services_tasks_link_to_run_on_many_with_the_filter_filled_in(client, batch_lab):
    lab = batch_lab
    lab.task()
    client.force_login(lab.cast.operator)
    page = client.get(f"/inventory/{lab.account.pk}/{BATCH_REGION}/{lab.cluster}/?service=web").content.decode()
    link = re.search(r'id="service-run-on-many" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    form = client.get(link).content.decode()
    assert f'<option value="{lab.account.pk}" selected>' in form
    assert f'id="batch-cluster" name="cluster" value="{lab.cluster}"' in form
    assert 'id="batch-service" name="service" value="web"' in form
    client.force_login(lab.cast.viewer)
    page = client.get(f"/inventory/{lab.account.pk}/{BATCH_REGION}/{lab.cluster}/?service=web").content.decode()
    assert "service-run-on-many" not in page  # viewers are not offered it
