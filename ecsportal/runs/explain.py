"""A run's failures in words a person can act on: ExecuteCommand's refusals and a session's end."""

from __future__ import annotations

from ecsportal.aws import records
from ecsportal.aws.errors import AccessDenied, AwsError, ExecNotEnabled, TargetNotConnected
from ecsportal.runs.models import Run
from ecsportal.ssm.session import KMS_UNSUPPORTED, EndKind, SessionEnded


def explain_exec_error(exc: AwsError, *, run: Run, task: records.Task | None) -> str:
    """ExecuteCommand's refusals as a person can act on them."""
    cluster = run.cluster_name
    if isinstance(exc, ExecNotEnabled):
        service = task.service_name if task else ""
        if service:
            fix = (
                f"Enable it on the service and replace its tasks: aws ecs update-service --cluster {cluster} "
                f"--service {service} --enable-execute-command --force-new-deployment"
            )
        else:
            fix = "This task is not part of a service: run it again with aws ecs run-task … --enable-execute-command"
        return (
            "ECS Exec is not enabled for this task (it cannot be switched on for a running task). "
            f"{fix}. Then run the command in a new task. AWS said: {_aws_said(exc)}"
        )
    if isinstance(exc, TargetNotConnected):
        return (
            f"The SSM agent in container {run.container} is not connected. Check that the task role "
            "allows ssmmessages:CreateControlChannel, CreateDataChannel, OpenControlChannel and "
            "OpenDataChannel, and that the task has a network path to the ssmmessages endpoint "
            "(a NAT gateway, a public IP, or a VPC endpoint for ssmmessages). A task that has just "
            f"started needs up to a minute; this one did not connect in time. AWS said: {_aws_said(exc)}"
        )
    if isinstance(exc, AccessDenied):
        role = run.role_arn or "the account's role"
        return (
            f"Access denied: {role} may not call ecs:ExecuteCommand on {run.task_arn}. Its IAM policy must "
            f"allow ecs:ExecuteCommand on the task and on the cluster {cluster}, and its conditions must "
            f"match (ecs:cluster, ecs:container-name = {run.container}, aws:ResourceTag/… on the task). "
            f"AWS said: {_aws_said(exc)}"
        )
    return str(exc)


def _aws_said(exc: AwsError) -> str:
    text = str(exc)
    return text.split("AWS said: ", 1)[1] if "AWS said: " in text else text


def explain_end(end: SessionEnded | None) -> str:
    if end is None:
        return "Channel lost: the session ended without saying why."
    if end.kind == EndKind.ERROR and KMS_UNSUPPORTED in end.message:
        return (
            "KMS-encrypted sessions are not supported: the cluster's ECS Exec configuration names a "
            "KMS key. Use the AWS CLI with the Session Manager plugin for this cluster, or remove the "
            "KMS key from its executeCommandConfiguration."
        )
    if end.kind == EndKind.ERROR:
        return f"The session failed: {end.message}."
    return f"Channel lost: {end.message}."
