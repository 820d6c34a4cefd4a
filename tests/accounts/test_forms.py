"""The account form's messages: each mistake people make when pasting from the console."""

from __future__ import annotations

import html

import pytest

from ecsportal.accounts.models import AwsAccount

pytestmark = pytest.mark.django_db

BASE = {
    "name": "Acme Sandbox",
    "account_id": "111122223333",
    "regions": "eu-west-1",
    "credential_source": "default",
    "session_name": "ecsportal",
    "session_duration": "3600",
}


def submit(client, **changes: str) -> str:
    """POST the form as HTMX does; return the re-rendered fragment's text (unescaped)."""
    answer = client.post("/accounts/new/", {**BASE, **changes}, headers={"HX-Request": "true"})
    assert answer.status_code == 200, "an invalid form re-renders in place"
    assert not AwsAccount.objects.filter(name=BASE["name"]).exists()
    body = answer.content.decode()
    assert body.lstrip().startswith("{#") is False and "<html" not in body, "HTMX gets the fragment only"
    return html.unescape(body)


@pytest.fixture
def admin_client(cast, login):
    return login(cast.admin)


@pytest.mark.parametrize(
    ("account_id", "message"),
    [
        ("12345678901", "exactly 12 digits (got 11 characters)"),
        ("1234-5678-9012", "exactly 12 digits (got 14 characters)"),
        ("١٢٣٤٥٦٧٨٩٠١٢", "exactly 12 digits"),  # Arabic-Indic digits are digits to Python, not to AWS
    ],
)
def test_malformed_account_id_is_refused_with_the_rule(admin_client, account_id, message):
    assert message in submit(admin_client, account_id=account_id)


@pytest.mark.parametrize(
    ("arn", "message"),
    [
        ("arn:aws:iam::111122223333:user/alice", "is an ARN but not of an IAM role"),
        ("ecsportal-access", "is not an IAM role ARN; it must look like arn:aws:iam::123456789012:role/Name"),
        ("arn:aws:iam::11112222333:role/x", "is not an IAM role ARN"),
        ("arn:aws:iam::111122223333:role/naïve", "is not an IAM role ARN"),
        ("arn:amazon:iam::111122223333:role/x", "“amazon” is not an AWS partition"),
    ],
)
def test_malformed_role_arn_is_refused(admin_client, arn, message):
    assert message in submit(admin_client, role_arn=arn)


def test_role_arn_from_another_partition_is_refused(admin_client):
    text = submit(admin_client, regions="cn-north-1", role_arn="arn:aws:iam::111122223333:role/ecsportal")
    assert "in the aws partition, but the account's regions are in aws-cn" in text


def test_regions_of_two_partitions_are_refused(admin_client):
    assert "same partition" in submit(admin_client, regions="eu-west-1 cn-north-1")


def test_unknown_region_code_is_named(admin_client):
    assert "“eu-west” is not an AWS region code" in submit(admin_client, regions="eu-west")


def test_role_arn_of_another_account_is_refused(admin_client):
    text = submit(admin_client, role_arn="arn:aws:iam::999999999999:role/ecsportal")
    assert "This role belongs to account 999999999999, not 111122223333" in text


def test_allowed_role_arns_are_checked_one_by_one(admin_client):
    text = submit(
        admin_client,
        role_arn="arn:aws:iam::111122223333:role/ecsportal",
        allowed_role_arns="arn:aws:iam::111122223333:role/readonly\narn:aws:iam::999999999999:role/other",
    )
    assert "This role belongs to account 999999999999" in text


def test_external_id_with_illegal_characters_names_them(admin_client):
    text = submit(admin_client, role_arn="arn:aws:iam::111122223333:role/ecsportal", external_id="acme id#1")
    assert "The External ID contains characters AWS does not allow: ' ' '#'" in text


def test_external_id_with_non_ascii_letters_is_refused(admin_client):
    """AWS's \\w is ASCII; Python's is Unicode. An accented letter must not slip through."""
    text = submit(admin_client, role_arn="arn:aws:iam::111122223333:role/ecsportal", external_id="clé-acme")
    assert "characters AWS does not allow: 'é'" in text


def test_external_id_without_a_role_is_refused(admin_client):
    assert "only applies when a role ARN is assumed" in submit(admin_client, external_id="acme-1234")


def test_session_name_with_spaces_is_refused(admin_client):
    assert "no spaces" in submit(admin_client, session_name="ecs portal")


@pytest.mark.parametrize("duration", ["899", "43201"])
def test_session_duration_outside_aws_limits_is_refused(admin_client, duration):
    text = submit(admin_client, session_duration=duration)
    assert "Ensure this value is" in text


def test_stored_keys_need_both_parts(admin_client):
    text = submit(admin_client, credential_source="keys")
    assert "Enter the access key ID" in text
    assert "Enter the secret access key" in text


def test_malformed_access_key_id_is_refused(admin_client):
    text = submit(admin_client, credential_source="keys", access_key_id="akia123", secret_access_key="x" * 40)
    assert "An access key ID is 20 characters starting with AKIA" in text


def test_a_secret_without_the_stored_key_source_is_refused(admin_client):
    assert "only used with the stored-access-key source" in submit(admin_client, secret_access_key="x" * 40)


def test_duplicate_name_is_refused_case_insensitively(admin_client):
    assert "Another account already has this name" in submit(admin_client, name="acme production")


def test_every_error_is_marked_on_its_field_and_nothing_is_saved(admin_client):
    text = submit(admin_client, account_id="1", regions="nowhere")
    assert "nothing was saved" in text
    assert text.count("is-invalid") >= 2


def test_a_valid_form_saves_the_cleaned_values(admin_client):
    answer = admin_client.post(
        "/accounts/new/",
        {
            **BASE,
            "regions": "eu-west-1, us-east-1 eu-west-1",
            "role_arn": " arn:aws:iam::111122223333:role/ecsportal ",
            "external_id": "acme:portal/1",
            "allowed_role_arns": "arn:aws:iam::111122223333:role/readonly\n\narn:aws:iam::111122223333:role/readonly",
        },
    )
    assert answer.status_code == 302
    account = AwsAccount.objects.get(name="Acme Sandbox")
    assert account.regions == ["eu-west-1", "us-east-1"]
    assert account.role_arn == "arn:aws:iam::111122223333:role/ecsportal"
    assert account.allowed_role_arns == ["arn:aws:iam::111122223333:role/readonly"]


def test_gov_cloud_account_with_gov_role_is_accepted(admin_client):
    answer = admin_client.post(
        "/accounts/new/",
        {**BASE, "regions": "us-gov-west-1", "role_arn": "arn:aws-us-gov:iam::111122223333:role/ecsportal"},
    )
    assert answer.status_code == 302
