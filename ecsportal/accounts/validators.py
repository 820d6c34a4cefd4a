"""Precise checks for the fields people paste from the AWS console."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

# re.ASCII: AWS's \w and \d are ASCII; Python's would also accept "é" or Arabic-Indic digits.
ACCOUNT_ID_RE = re.compile(r"\d{12}", re.ASCII)
REGION_RE = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}", re.ASCII)
ROLE_ARN_RE = re.compile(
    r"arn:(?P<partition>[a-z-]+):iam::(?P<account>\d{12}):role/(?P<path>[\w+=,.@/-]{1,512})", re.ASCII
)
EXTERNAL_ID_RE = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)
EXTERNAL_ID_CHAR_RE = re.compile(r"[\w+=,.@:/-]", re.ASCII)
SESSION_NAME_RE = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
ACCESS_KEY_ID_RE = re.compile(r"(AKIA|ASIA)[A-Z0-9]{16}", re.ASCII)
PARTITIONS = {"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b"}


def partition_for_region(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("us-isob-"):
        return "aws-iso-b"
    if region.startswith("us-iso-"):
        return "aws-iso"
    return "aws"


def validate_account_id(value: str) -> None:
    if not ACCOUNT_ID_RE.fullmatch(value or ""):
        raise ValidationError(
            f"An AWS account ID is exactly 12 digits (got {len(value or '')} characters); "
            "copy it from the account menu in the AWS console, leading zeros included."
        )


def validate_region(value: str) -> None:
    if not REGION_RE.fullmatch(value):
        raise ValidationError(f"“{value}” is not an AWS region code; use codes like eu-west-1 or us-east-2.")


def validate_role_arn(value: str, *, partition: str | None = None, account_id: str | None = None) -> None:
    match = ROLE_ARN_RE.fullmatch(value)
    if not match:
        if value.startswith("arn:") and ":role/" not in value:
            raise ValidationError(
                f"“{value}” is an ARN but not of an IAM role; it must look like arn:aws:iam::123456789012:role/Name."
            )
        raise ValidationError(
            f"“{value}” is not an IAM role ARN; it must look like arn:aws:iam::123456789012:role/Name."
        )
    found = match["partition"]
    if found not in PARTITIONS:
        raise ValidationError(f"“{found}” is not an AWS partition (aws, aws-cn, aws-us-gov).")
    if partition and found != partition:
        raise ValidationError(
            f"This role is in the {found} partition, but the account's regions are in {partition}; "
            "a role cannot be assumed across partitions."
        )
    if account_id and match["account"] != account_id:
        raise ValidationError(
            f"This role belongs to account {match['account']}, not {account_id}; "
            "use the role created in the target account."
        )


def validate_external_id(value: str) -> None:
    if not EXTERNAL_ID_RE.fullmatch(value):
        bad = sorted({ch for ch in value if not EXTERNAL_ID_CHAR_RE.fullmatch(ch)})
        if bad:
            shown = " ".join(repr(ch) for ch in bad)
            raise ValidationError(
                f"The External ID contains characters AWS does not allow: {shown}. "
                "Use letters, digits and + = , . @ : / - only."
            )
        raise ValidationError("The External ID must be 2 to 1224 characters long.")


def validate_session_name(value: str) -> None:
    if not SESSION_NAME_RE.fullmatch(value):
        raise ValidationError("A session name is 2 to 64 letters, digits or + = , . @ - (no spaces).")


def validate_access_key_id(value: str) -> None:
    if not ACCESS_KEY_ID_RE.fullmatch(value):
        raise ValidationError(
            "An access key ID is 20 characters starting with AKIA (or ASIA), capital letters and digits."
        )


_SHELL_COMMAND_RE = re.compile(r"^[A-Za-z0-9_./=+,:@ -]+$")


def validate_shell_command(value: str) -> None:
    """A shell command is "auto" or a program with plain arguments: no shell syntax, which
    ECS Exec would hand to the container as is and which no reviewer expects in a setting."""
    if value == "auto":
        return
    if not _SHELL_COMMAND_RE.match(value):
        bad = sorted({c for c in value if not _SHELL_COMMAND_RE.match(c)})
        shown = " ".join(repr(c) for c in bad[:5])
        raise ValidationError(
            f"Use “auto” or a program and plain arguments (letters, digits, / . _ - = + , : @); not {shown}."
        )
    program = value.split()[0]
    if program.startswith("-"):
        raise ValidationError("Start with the program to run (e.g. /bin/bash), not an option.")
