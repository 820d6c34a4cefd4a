"""botocore's errors, turned into the project's own, with words a person can act on.

Every message says what happened and what to do next; none carries a secret or a token
(botocore's own messages never include the secret key, and we add nothing from the request).
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)

_ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
_THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
}
_CREDENTIALS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "RequestExpired",
}
_NOT_FOUND = {"ClusterNotFoundException", "ServiceNotFoundException", "NoSuchEntity", "ResourceNotFoundException"}


class AwsError(Exception):
    """An AWS call failed. `str()` is the sentence for the page; `code` is AWS's own error code."""

    kind = "error"

    def __init__(self, message: str, *, code: str = "", operation: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.operation = operation


class AccessDenied(AwsError):
    kind = "access_denied"


class Throttled(AwsError):
    kind = "throttled"


class CredentialsError(AwsError):
    kind = "credentials"


class EndpointUnreachable(AwsError):
    kind = "unreachable"


class NotFound(AwsError):
    kind = "not_found"


class AccountMismatch(AwsError):
    """The credentials work, but they reach another AWS account than the one declared."""

    kind = "account_mismatch"

    def __init__(self, *, declared: str, reached: str) -> None:
        super().__init__(
            f"These credentials reach AWS account {reached}, not {declared} as declared. Fix the account ID "
            "or the credentials and role (Accounts → Edit), then Test connection; until then nothing is "
            "collected for this account, so another account's tasks are never counted as its own.",
            code="AccountMismatch",
            operation="GetCallerIdentity",
        )
        self.declared = declared
        self.reached = reached


class InvalidRequest(AwsError):
    kind = "invalid"


class ExecNotEnabled(InvalidRequest):
    kind = "exec_not_enabled"


class TargetNotConnected(AwsError):
    kind = "target_not_connected"


# The IAM action each boto3 operation needs, for AccessDenied messages.
IAM_ACTIONS = {
    "ListClusters": "ecs:ListClusters",
    "DescribeClusters": "ecs:DescribeClusters",
    "ListServices": "ecs:ListServices",
    "DescribeServices": "ecs:DescribeServices",
    "ListTasks": "ecs:ListTasks",
    "DescribeTasks": "ecs:DescribeTasks",
    "StopTask": "ecs:StopTask",
    "ExecuteCommand": "ecs:ExecuteCommand",
    "AssumeRole": "sts:AssumeRole",
    "GetCallerIdentity": "sts:GetCallerIdentity",
}


def translate(exc: Exception, *, operation: str = "", where: str = "") -> AwsError:
    """Map any boto3/botocore failure to an AwsError. `where` names the target, e.g. a cluster."""
    if isinstance(exc, AwsError):
        return exc
    at = f" on {where}" if where else ""
    if isinstance(exc, ClientError):
        return _translate_client_error(exc, operation or exc.operation_name, at)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return CredentialsError(
            "The portal found no usable AWS credentials. Set the portal's own credentials "
            "(environment, profile, instance or task role) or store an access key on the account.",
            code=type(exc).__name__,
            operation=operation,
        )
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
        return EndpointUnreachable(
            f"Could not reach the AWS endpoint{at} ({exc}). Check the network path, proxy and "
            "region; the portal will try again on the next refresh.",
            code=type(exc).__name__,
            operation=operation,
        )
    if isinstance(exc, ReadTimeoutError):
        return EndpointUnreachable(
            f"AWS did not answer {operation or 'the call'}{at} in time. Try again; if it persists, "
            "raise ECSPORTAL_AWS_READ_TIMEOUT.",
            code="ReadTimeout",
            operation=operation,
        )
    if isinstance(exc, ParamValidationError):
        return InvalidRequest(f"The request was malformed: {exc}", code="ParamValidation", operation=operation)
    if isinstance(exc, NoRegionError):
        return InvalidRequest("No region was given for the call.", code="NoRegion", operation=operation)
    if isinstance(exc, BotoCoreError):
        return AwsError(f"The AWS SDK failed{at}: {exc}", code=type(exc).__name__, operation=operation)
    return AwsError(f"Unexpected failure{at}: {type(exc).__name__}", code=type(exc).__name__, operation=operation)


def _translate_client_error(exc: ClientError, operation: str, at: str) -> AwsError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    text = str(error.get("Message", "")).strip()
    iam = IAM_ACTIONS.get(operation, f"the IAM action for {operation}")
    if code in _ACCESS_DENIED:
        return AccessDenied(
            f"Access denied{at}: the role lacks {iam}, or an IAM condition (cluster, tags, "
            f"container) does not match. Ask the account's AWS admin to allow {iam}. AWS said: {text}",
            code=code,
            operation=operation,
        )
    if code in _THROTTLED:
        return Throttled(
            f"AWS throttled {operation}{at} even after retries. Wait a minute and refresh; "
            "if it keeps happening, fewer parallel users or a quota increase will help.",
            code=code,
            operation=operation,
        )
    if code in _CREDENTIALS:
        return CredentialsError(
            f"AWS refused the credentials ({code}): they are expired, revoked or wrong. "
            "Renew the portal's credentials or enter a new access key on the account.",
            code=code,
            operation=operation,
        )
    if code in _NOT_FOUND:
        return NotFound(
            f"Not found{at}: {(text or code).rstrip('.')}. It may have been deleted, or it is in another region.",
            code=code,
            operation=operation,
        )
    if code == "TargetNotConnectedException":
        return TargetNotConnected(
            f"The SSM agent in the container is not connected{at}. Early in a task's life wait a "
            "minute and retry; otherwise check that the task role allows ssmmessages:* and the "
            "task has a route to the ssmmessages endpoint.",
            code=code,
            operation=operation,
        )
    if code == "InvalidParameterException" and "execute command" in text.lower():
        return ExecNotEnabled(
            f"ECS Exec is not enabled for this task{at}. It cannot be switched on for a running "
            "task: enable it on the service (update-service --enable-execute-command) and deploy "
            f"again. AWS said: {text}",
            code=code,
            operation=operation,
        )
    if code in {"InvalidParameterException", "ClientException", "ValidationError", "InvalidParameterValue"}:
        return InvalidRequest(f"AWS rejected the request{at}: {text or code}", code=code, operation=operation)
    return AwsError(f"AWS failed {operation}{at}: {code}: {text}", code=code, operation=operation)
