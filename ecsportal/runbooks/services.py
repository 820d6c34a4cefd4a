"""Writes for runbooks, each audited in the same transaction; and running one (a run request).

A runbook may span several accounts: its events are recorded once per account it covers
(before and after a change), so each account's admins find them in their audit trail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from ecsportal.accounts.models import AwsAccount
from ecsportal.audit.services import audit_record
from ecsportal.runbooks.models import Runbook, RunbookOption
from ecsportal.runbooks.rendering import render_command
from ecsportal.runs.models import Run
from ecsportal.runs.services import run_request

_FIELDS = (
    "name",
    "description",
    "cluster_pattern",
    "container_pattern",
    "command_template",
    "mode",
    "needs_approval",
    "is_enabled",
)
_OPTION_FIELDS = (
    "name",
    "label",
    "kind",
    "help_text",
    "required",
    "default",
    "pattern",
    "choices",
    "min_value",
    "max_value",
    "flag",
    "secret",
)


def _audit(
    *,
    actor: AbstractBaseUser,
    action: str,
    runbook: Runbook,
    accounts: Iterable[AwsAccount],
    details: dict[str, Any],
    source_ip: str | None,
) -> None:
    for account in sorted(set(accounts), key=lambda a: a.pk):
        audit_record(
            actor=actor, action=action, target=runbook.name, account=account, details=details, source_ip=source_ip
        )


def _option_rows(options: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stored fields of each option, empty values as the model stores them."""
    rows = []
    for option in options:
        row = {}
        for name in _OPTION_FIELDS:
            value = option.get(name)
            if value is None and name not in ("min_value", "max_value"):
                value = RunbookOption._meta.get_field(name).get_default()
            row[name] = value
        rows.append(row)
    return rows


def _set_options(runbook: Runbook, options: Sequence[dict[str, Any]]) -> bool:
    """Replace the options by `options` (in order); True if anything changed."""
    before = [{k: getattr(o, k) for k in _OPTION_FIELDS} for o in runbook.options.order_by("position", "id")]
    after = _option_rows(options)
    if before == after:
        return False
    runbook.options.all().delete()
    RunbookOption.objects.bulk_create(RunbookOption(runbook=runbook, position=i, **row) for i, row in enumerate(after))
    return True


@transaction.atomic
def runbook_create(
    *,
    actor: AbstractBaseUser,
    data: dict[str, Any],
    accounts: Sequence[AwsAccount],
    options: Sequence[dict[str, Any]],
    source_ip: str | None = None,
) -> Runbook:
    runbook = Runbook(
        created_by=actor if actor.is_authenticated else None, **{k: data[k] for k in _FIELDS if k in data}
    )
    runbook.save()
    runbook.accounts.set(accounts)
    _set_options(runbook, options)
    _audit(
        actor=actor,
        action="runbook.created",
        runbook=runbook,
        accounts=accounts,
        details={
            "runbook": runbook.pk,
            "accounts": sorted(a.name for a in accounts),
            "options": [o["name"] for o in options],
        },
        source_ip=source_ip,
    )
    return runbook


@transaction.atomic
def runbook_update(
    *,
    actor: AbstractBaseUser,
    runbook: Runbook,
    data: dict[str, Any],
    accounts: Sequence[AwsAccount],
    options: Sequence[dict[str, Any]],
    source_ip: str | None = None,
) -> Runbook:
    runbook = Runbook.objects.select_for_update().get(pk=runbook.pk)
    old_accounts = list(runbook.accounts.all())
    changed = [k for k in _FIELDS if k in data and getattr(runbook, k) != data[k]]
    for name in changed:
        setattr(runbook, name, data[name])
    if changed:
        runbook.save()
    if {a.pk for a in old_accounts} != {a.pk for a in accounts}:
        runbook.accounts.set(accounts)
        changed.append("accounts")
    if _set_options(runbook, options):
        changed.append("options")
    if changed:
        _audit(
            actor=actor,
            action="runbook.changed",
            runbook=runbook,
            accounts=[*old_accounts, *accounts],
            details={"runbook": runbook.pk, "fields": changed, "accounts": sorted(a.name for a in accounts)},
            source_ip=source_ip,
        )
    return runbook


@transaction.atomic
def runbook_set_enabled(
    *, actor: AbstractBaseUser, runbook: Runbook, enabled: bool, source_ip: str | None = None
) -> Runbook:
    Runbook.objects.filter(pk=runbook.pk).update(is_enabled=enabled)
    runbook.refresh_from_db()
    _audit(
        actor=actor,
        action="runbook.changed",
        runbook=runbook,
        accounts=runbook.accounts.all(),
        details={"runbook": runbook.pk, "fields": ["is_enabled"], "is_enabled": enabled},
        source_ip=source_ip,
    )
    return runbook


@transaction.atomic
def runbook_delete(*, actor: AbstractBaseUser, runbook: Runbook, source_ip: str | None = None) -> None:
    """Past runs keep the runbook's name (a plain field), so deleting loses no history."""
    accounts = list(runbook.accounts.all())
    pk = runbook.pk
    runbook.delete()
    runbook.pk = pk
    _audit(
        actor=actor,
        action="runbook.deleted",
        runbook=runbook,
        accounts=accounts,
        details={"runbook": pk},
        source_ip=source_ip,
    )


@sensitive_variables("values", "command")
def runbook_run(
    *,
    actor: AbstractBaseUser,
    runbook: Runbook,
    account_pk: int,
    region: str,
    cluster: str,
    task: str,
    container: str,
    values: dict[str, object],
    reason: str = "",
    source_ip: str | None = None,
) -> Run:
    """Render the command (values quoted, secrets masked in the shown one) and ask for a run.

    The run service checks the operator role, the running task and its container, and asks
    for approval when the runbook needs it; its RunRefused reaches the form as an error.
    """
    command, shown = render_command(runbook.command_template, runbook.option_specs(), values)
    return run_request(
        actor=actor,
        account_pk=account_pk,
        region=region,
        cluster=cluster,
        task=task,
        container=container,
        command=command,
        shown_command=shown,
        mode=runbook.mode,
        reason=reason,
        approval_policy="runbook" if runbook.needs_approval else None,
        runbook_name=runbook.name,
        source_ip=source_ip,
    )
