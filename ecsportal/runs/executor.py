"""Runs as the approval gate sees them: what will happen, starting the approved run once, and
ending the run when its request closes without running it.

The executor never holds the approver's click for the run's length: it checks that the run
is still the exact command on the exact task and container that were approved, queues it and
hands it to the dispatcher, then returns. The gate calls `run_closed` (registered as the
action's `on_closed` hook; approvals never import runs) after a rejection, an expiry, a
withdrawal or a failure, so the operator's page says "Rejected by …" within moments.
"""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse

from ecsportal.accounts.selectors import account_allows_role_arn
from ecsportal.approvals.models import ApprovalRequest
from ecsportal.approvals.registry import Outcome
from ecsportal.runs import dispatcher
from ecsportal.runs.lifecycle import run_end, run_end_for_approval, run_queue_approved
from ecsportal.runs.models import Run, RunStatus
from ecsportal.runs.selectors import command_sha256, run_real_command


def run_describe(request: ApprovalRequest) -> list[str]:
    target = request.target
    return [
        f"Runs {target.get('command', '')!r} in container {target.get('container', '')} of task "
        f"{str(target.get('task_arn', '')).rsplit('/', 1)[-1]} ({target.get('cluster', '')}, {target.get('region', '')}).",
        "The command runs as the requester's run, with its output recorded and shown live on the run page.",
        "An approval is for this exact command on this exact container; anything else needs a new request.",
    ]


def run_url(request: ApprovalRequest) -> str:
    try:
        return reverse("runs:detail", args=[request.target.get("run")])
    except NoReverseMatch:
        return ""


def _refuse(run: Run, text: str) -> Outcome:
    run_end(
        run_pk=run.pk,
        status=RunStatus.CANCELLED,
        end_reason=f"Not run: {text}",
        from_statuses=(RunStatus.AWAITING_APPROVAL,),
    )
    return Outcome(False, text)


def run_execute(request: ApprovalRequest) -> Outcome:
    """Called by the gate exactly once per request, outside any transaction."""
    run = Run.objects.select_related("account").filter(pk=request.target.get("run")).first()
    if run is None or run.approval_id != request.pk:
        return Outcome(False, "The run this request was for no longer exists; nothing was run.")
    if run.status != RunStatus.AWAITING_APPROVAL:
        return Outcome(False, f"Run #{run.pk} is {run.get_status_display().lower()}; nothing was run.")
    digest = command_sha256(command=run_real_command(run=run), task_arn=run.task_arn, container=run.container)
    if digest != request.target.get("command_sha256") or digest != run.command_sha256:
        return _refuse(run, "the command, task or container differs from what was approved.")
    if not account_allows_role_arn(account=run.account, role_arn=run.role_arn):
        return _refuse(run, f"the role {run.role_arn} is no longer allowed on {run.account.name}.")
    if not run_queue_approved(run_pk=run.pk):
        return Outcome(False, f"Run #{run.pk} changed meanwhile; nothing was run.")
    dispatcher.dispatch(run.pk)
    return Outcome(True, f"Run #{run.pk} started; its output is on the run page.")


def run_closed(request: ApprovalRequest) -> None:
    """The request closed without running: the run waiting on it ends now, saying why."""
    run_end_for_approval(request=request)
