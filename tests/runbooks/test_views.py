"""The self-service page and a runbook's form: who sees what, typed fields, refusals as form errors."""

from __future__ import annotations

import pytest
from django.utils.html import escape

from ecsportal.aws import ecs
from ecsportal.runbooks.models import Runbook
from ecsportal.runs.models import Run

pytestmark = pytest.mark.django_db


def task_id(cast, cluster: str, family: str, region: str = "eu-west-1") -> str:
    config = cast.prod.aws_config()
    for task in ecs.describe_tasks(config, region, cluster, ecs.list_task_arns(config, region, cluster)):
        if task.task_definition.startswith(family + ":"):
            return task.id
    raise AssertionError(f"no {family} task in {cluster}")


def test_anonymous_users_are_sent_to_log_in(client, echo_book):
    for url in ("/runbooks/", f"/runbooks/{echo_book.pk}/", f"/runbooks/{echo_book.pk}/pick/"):
        answer = client.get(url)
        assert answer.status_code == 302 and answer["Location"].startswith("/login/")
    assert client.post(f"/runbooks/{echo_book.pk}/", {"opt_message": "x"}).status_code == 302
    assert not Run.objects.exists()


def test_an_outsider_sees_none_of_another_accounts_runbooks(cast, login, echo_book):
    client = login(cast.outsider)
    page = client.get("/runbooks/").content.decode()
    assert "Echo" not in page and "No runbooks for your accounts yet" in page
    assert client.get(f"/runbooks/{echo_book.pk}/").status_code == 404
    assert client.get(f"/runbooks/{echo_book.pk}/pick/").status_code == 404
    assert client.post(f"/runbooks/{echo_book.pk}/", {"opt_message": "x"}).status_code == 404


def test_a_viewer_sees_the_runbooks_and_is_told_running_needs_the_operator_role(cast, login, echo_book):
    client = login(cast.viewer)
    page = client.get("/runbooks/").content.decode()
    assert "Echo" in page
    assert "running one needs the operator role" in page
    assert f'href="/runbooks/{echo_book.pk}/">Run' not in page

    detail = client.get(f"/runbooks/{echo_book.pk}/").content.decode()
    assert "you can read it, not run it" in detail
    assert 'name="opt_message"' not in detail
    assert client.post(f"/runbooks/{echo_book.pk}/", {"opt_message": "x"}).status_code == 403
    assert not Run.objects.exists()


def test_an_operator_gets_one_typed_field_per_option_with_its_help_and_default(cast, login, echo_book, local_aws):
    client = login(cast.operator)
    assert f'href="/runbooks/{echo_book.pk}/">Run' in client.get("/runbooks/").content.decode()

    page = client.get(f"/runbooks/{echo_book.pk}/").content.decode()
    assert 'type="text" name="opt_message"' in page
    assert 'type="number" name="opt_count"' in page and 'value="3"' in page and 'min="1"' in page
    assert "Any text." in page
    assert 'id="picker"' in page and f"/runbooks/{echo_book.pk}/pick/" in page


def test_the_empty_state_says_what_would_fill_the_page(cast, login):
    Runbook.objects.all().delete()
    assert "Create the first runbook" in login(cast.admin).get("/runbooks/").content.decode()
    page = login(cast.operator).get("/runbooks/").content.decode()
    assert "No runbooks for your accounts yet" in page and "An account admin creates them" in page


def test_the_picker_offers_only_clusters_and_containers_matching_the_patterns(cast, login, echo_book, local_aws):
    echo_book.cluster_pattern = "prod-w*"
    echo_book.container_pattern = "app"
    echo_book.save()
    client = login(cast.operator)

    clusters = client.get(f"/runbooks/{echo_book.pk}/pick/", {"account": cast.prod.pk, "region": "eu-west-1"})
    assert 'value="prod-web"' in clusters.content.decode()
    assert 'value="prod-batch"' not in clusters.content.decode()

    web = task_id(cast, "prod-web", "web")
    picked = {"account": cast.prod.pk, "region": "eu-west-1", "cluster": "prod-web", "task": web}
    containers = client.get(f"/runbooks/{echo_book.pk}/pick/", picked).content.decode()
    assert 'value="app" selected' in containers  # the only match is picked for you
    assert 'value="envoy"' not in containers

    batch = {"account": cast.prod.pk, "region": "eu-west-1", "cluster": "prod-batch"}
    assert "prod-batch" not in client.get(f"/runbooks/{echo_book.pk}/pick/", batch).content.decode()


def test_the_picker_offers_only_the_runbooks_accounts(cast, login, echo_book, local_aws):
    echo_book.accounts.set([cast.staging])
    page = login(cast.operator).get(f"/runbooks/{echo_book.pk}/").content.decode()
    assert "Acme Staging" in page
    assert f'value="{cast.prod.pk}"' not in page


def _post(cast, **values):
    return {
        "account": str(cast.prod.pk),
        "region": "eu-west-1",
        "cluster": "prod-web",
        "task": task_id(cast, "prod-web", "web"),
        "container": "app",
        **values,
    }


@pytest.mark.parametrize(
    ("values", "field_error"),
    [
        ({"opt_message": "hi", "opt_count": "3; id"}, "Enter a whole number."),
        ({"opt_message": "hi", "opt_count": "11"}, "At most 10."),
        ({"opt_message": "", "opt_count": "3"}, "This value is required."),
        ({"opt_message": "a\x00b", "opt_count": "3"}, "Control characters are not allowed"),
        ({"opt_message": "x" * 5000, "opt_count": "3"}, "At most 4096 characters"),
    ],
)
def test_type_and_pattern_violations_are_form_errors_with_what_was_typed(
    cast, login, echo_book, local_aws, values, field_error
):
    answer = login(cast.operator).post(f"/runbooks/{echo_book.pk}/", _post(cast, **values))

    html = answer.content.decode()
    assert answer.status_code == 422
    assert field_error in html
    assert f'value="{values["opt_count"]}"' in html
    assert 'value="prod-web" selected' in html  # the picked target is kept
    assert not Run.objects.exists()


def test_a_pattern_violation_is_explained_in_words_not_as_the_regular_expression(cast, login, local_aws):
    book = Runbook.objects.get(name="Tail a log file")
    pattern = book.options.get(name="path").pattern
    for path in ("/etc/shadow", "/var/log/../../etc/shadow"):
        answer = login(cast.operator).post(f"/runbooks/{book.pk}/", _post(cast, opt_path=path, opt_lines="5"))
        assert answer.status_code == 422
        html = answer.content.decode()
        assert "Not in the form “Log file” accepts. Check the value; the hint below says what it takes." in html
        assert escape(pattern) not in html and "(?!" not in html
        # the hint it points to is the field's description for assistive technology too
        assert 'id="id_opt_path_helptext"' in html and 'id="id_opt_path_error"' in html
        assert 'aria-describedby="id_opt_path_helptext id_opt_path_error"' in html


def test_a_secret_typed_is_not_sent_back_in_the_page(cast, login, local_aws):
    book = Runbook.objects.get(name="Fingerprint a token")
    answer = login(cast.operator).post(f"/runbooks/{book.pk}/", _post(cast, opt_token="s3cr3t-\x1b-value", cluster=""))
    assert answer.status_code == 422
    assert "s3cr3t" not in answer.content.decode()
    assert 'type="password"' in answer.content.decode()


def test_a_target_outside_the_patterns_is_refused_on_the_server(cast, login, echo_book, local_aws):
    echo_book.container_pattern = "envoy"
    echo_book.save()
    answer = login(cast.operator).post(f"/runbooks/{echo_book.pk}/", _post(cast, opt_message="hi", opt_count="3"))

    assert answer.status_code == 422
    assert "runs only in containers matching envoy; app does not" in answer.content.decode()
    assert not Run.objects.exists()


def test_an_account_the_runbook_does_not_run_on_is_refused(cast, login, echo_book, local_aws):
    echo_book.accounts.set([cast.staging])
    answer = login(cast.operator).post(f"/runbooks/{echo_book.pk}/", _post(cast, opt_message="hi", opt_count="3"))
    assert answer.status_code == 422
    assert "does not run on that account" in answer.content.decode()
    assert not Run.objects.exists()


def test_the_demo_runbooks_are_all_valid(cast):
    from ecsportal.demo.seed import DEMO_RUNBOOKS
    from ecsportal.runbooks.rendering import check_template

    books = Runbook.objects.filter(name__in=[b["name"] for b in DEMO_RUNBOOKS])
    assert books.count() == len(DEMO_RUNBOOKS)
    for book in books:
        assert check_template(book.command_template, [o.name for o in book.options.all()]) == [], book.name
    assert books.filter(needs_approval=True).exists() and books.filter(options__secret=True).exists()


def test_self_service_is_the_active_navigation_item_on_runbook_pages(cast, login, echo_book):
    import re

    client = login(cast.admin)
    for url in ("/runbooks/", f"/runbooks/{echo_book.pk}/", "/runbooks/manage/"):
        page = client.get(url).content.decode()
        assert re.findall(r'class="nav-link active"[^>]*>([^<]+)<', page) == ["Self-service"], url


def test_an_htmx_post_with_an_error_gets_the_form_back_alone_keeping_what_was_typed(cast, login, echo_book, local_aws):
    values = _post(cast, opt_message="kept <b>", opt_count="11")
    answer = login(cast.operator).post(f"/runbooks/{echo_book.pk}/", values, HTTP_HX_REQUEST="true")
    html = answer.content.decode()
    assert answer.status_code == 422
    assert html.lstrip().startswith("<form") and 'id="runbook-run-form"' in html and "<!doctype" not in html
    assert 'hx-post="/runbooks/' in html and "At most 10." in html
    assert 'value="kept &lt;b&gt;"' in html and 'value="prod-web" selected' in html
    assert not Run.objects.exists()


def test_an_htmx_post_that_starts_a_run_redirects_the_browser_to_it(cast, login, echo_book, local_aws):
    values = _post(cast, opt_message="hi", opt_count="3")
    answer = login(cast.operator).post(f"/runbooks/{echo_book.pk}/", values, HTTP_HX_REQUEST="true")
    run = Run.objects.get()
    assert answer.status_code == 200 and answer["HX-Redirect"] == f"/runs/{run.pk}/"
    plain = login(cast.operator).post(f"/runbooks/{echo_book.pk}/", values)  # without JavaScript
    assert plain.status_code == 302 and plain["Location"] == f"/runs/{Run.objects.order_by('-pk')[0].pk}/"
