""" "Open a shell" next to every exec-ready container of the inventory's pages (a cluster's task
list, a service's tasks, the task page), as the account's policy says: the button for operators,
a link to the request form under "access request" until a grant covers the container, nothing
for viewers or where shells are off. Against the demo's local AWS (the staging cluster)."""

from __future__ import annotations

import html
import re

import pytest

from ecsportal.accounts.models import AwsAccount, ShellAccess
from ecsportal.approvals.models import ApprovalRequest
from ecsportal.approvals.services import approval_decide
from ecsportal.aws import ecs

pytestmark = pytest.mark.django_db


def _tasks(account: str, cluster: str):
    config = AwsAccount.objects.get(name=account).aws_config()
    return ecs.describe_tasks(config, "eu-west-1", cluster, ecs.list_task_arns(config, "eu-west-1", cluster))


def _page(client, path: str) -> str:
    answer = client.get(path)
    assert answer.status_code == 200
    return html.unescape(answer.content.decode())


def _shell_forms(page: str) -> set[tuple[str, str]]:
    """(task id, container) of every "open a shell" form on the page."""
    found = set()
    for form in re.findall(r'<form method="post" action="/runs/shell/".*?</form>', page, re.DOTALL):
        fields = dict(re.findall(r'name="(task|container)" value="([^"]*)"', form))
        found.add((fields["task"], fields["container"]))
    return found


def _request_links(page: str) -> set[tuple[str, str]]:
    found = set()
    for href in re.findall(r'class="[^"]*shell-request-button[^"]*"[^>]*href="([^"]+)"', page):
        query = dict(re.findall(r"(task|container)=([^&]+)", href))
        found.add((query["task"], query["container"]))
    return found


def test_the_cluster_page_offers_a_shell_in_every_exec_ready_container_to_operators(cast, login, local_aws):
    AwsAccount.objects.filter(pk=cast.prod.pk).update(shell_access=ShellAccess.OPERATORS)
    tasks = _tasks("Acme Production", "prod-web")
    ready = {(t.id, c.name) for t in tasks for c in t.containers if t.exec_readiness(c.name).ready}
    not_ready = {(t.id, c.name) for t in tasks for c in t.containers} - ready
    assert ready and not_ready  # the demo has both kinds (ECS Exec off on worker, an agent pending)
    path = f"/inventory/{cast.prod.pk}/eu-west-1/prod-web/"
    page = _page(login(cast.operator), path)
    assert _shell_forms(page) == ready
    # The compact button's accessible name still says which container of which task.
    assert re.search(r">Shell<span class=\"visually-hidden\"> in app of task [\w-]+</span></button>", page)
    # A service's own list (the cluster page filtered to it) offers the same for its tasks.
    web = next(t for t in tasks if t.service_name and (t.id, "app") in ready)
    of_service = _shell_forms(_page(login(cast.operator), f"{path}?service={web.service_name}"))
    assert (web.id, "app") in of_service and of_service <= ready
    # Viewers are not offered it (the task page's panel says why); nor anyone where shells are off.
    assert _shell_forms(_page(login(cast.viewer), path)) == set() == _request_links(_page(login(cast.viewer), path))
    AwsAccount.objects.filter(pk=cast.prod.pk).update(shell_access=ShellAccess.OFF)
    page = _page(login(cast.operator), path)
    assert _shell_forms(page) == set() == _request_links(page)


def test_under_access_requests_the_inventory_links_to_the_request_form_until_a_grant_covers_it(cast, login, local_aws):
    AwsAccount.objects.filter(pk=cast.staging.pk).update(shell_access=ShellAccess.REQUEST)
    tasks = _tasks("Acme Staging", "staging")
    ready = {(t.id, c.name) for t in tasks for c in t.containers if t.exec_readiness(c.name).ready}
    path = f"/inventory/{cast.staging.pk}/eu-west-1/staging/"
    operator = login(cast.operator)
    page = _page(operator, path)
    assert _shell_forms(page) == set() and _request_links(page) == ready
    task_id, container = sorted(ready)[0]
    task_path = f"{path}tasks/{task_id}/"
    assert (task_id, container) in _request_links(_page(operator, task_path))
    assert _shell_forms(_page(operator, task_path)) == set()

    # The link's form, approved by another person: that container (only) now opens a shell.
    answer = operator.post(
        "/shells/access/new/",
        {
            "account": cast.staging.pk,
            "region": "eu-west-1",
            "cluster": "staging",
            "task": task_id,
            "container": container,
            "scope": "container",
            "minutes": "30",
            "reason": "the worker is stuck; read /proc",
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    request = ApprovalRequest.objects.get(action="ecs.shell_access")
    approval_decide(actor=cast.approver, request_pk=request.pk, decision="approve")
    page = _page(operator, path)
    assert _shell_forms(page) == {(task_id, container)}
    assert _request_links(page) == ready - {(task_id, container)}
    assert _shell_forms(_page(operator, task_path)) == {(task_id, container)}
    # The grant is the operator's: another operator of the account still gets the link.
    assert _shell_forms(_page(login(cast.approver), path)) == set()
