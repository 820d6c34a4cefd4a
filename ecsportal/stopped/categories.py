"""Why did this task stop? Categories, explanations and failure signatures, as pure functions.

No Django and no boto3 here: the collector stores what `classify` returns, the pages show what
`CATEGORIES` says, and the tests feed it the messages of `docs/ecs-facts.md` directly.

The order of the rules matters and follows what an on-call engineer would read first: the
portal's own stops (`ecsportal #N: …`, written by `stops/reason.py`) are recognised whatever
stop code comes with them; a user's StopTask reason is theirs (it may quote any error text);
an AWS error name in the task's reason beats the same in a container's; a container error
beats the generic "Essential container in task exited"; known scheduler and host messages
come next, then exit codes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ERROR_CODES_URL = "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html"
STOPPED_ERRORS_URL = "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-errors.html"
_GUIDE = "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/"

FAILURE = "failure"
ROUTINE = "routine"  # expected stops: deployments, scale-in, someone pressing stop


@dataclass(frozen=True)
class Category:
    id: str
    label: str
    kind: str
    meaning: str
    checks: tuple[str, ...]
    doc_url: str = ERROR_CODES_URL

    @property
    def is_routine(self) -> bool:
        return self.kind == ROUTINE


def _c(id_: str, label: str, meaning: str, checks: Iterable[str], doc: str = ERROR_CODES_URL, kind: str = FAILURE):
    return Category(id=id_, label=label, kind=kind, meaning=meaning, checks=tuple(checks), doc_url=doc)


_ALL = [
    _c(
        "cannot-pull-container",
        "Image pull failed",
        "CannotPullContainerError: ECS could not pull the container image, so the task never started.",
        [
            "Route to the registry: NAT gateway, or VPC endpoints for ECR (api, dkr) and S3 in private subnets.",
            "The task execution role allows ECR (ecr:GetAuthorizationToken, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer).",
            "The image name and tag exist in the registry.",
            "Docker Hub rate limits, for public images pulled without credentials.",
        ],
        _GUIDE + "task_cannot_pull_image.html",
    ),
    _c(
        "resource-initialization",
        "Resource initialization failed",
        "ResourceInitializationError: the agent could not prepare secrets, registry authentication or "
        "logging before starting the containers.",
        [
            "Network path to Secrets Manager, SSM Parameter Store, ECR and CloudWatch Logs (VPC endpoints or NAT).",
            "The task execution role's permissions for those secrets, parameters and log groups.",
            "VPC DNS resolution and DNS hostnames are enabled.",
        ],
        _GUIDE + "resource-initialization-error.html",
    ),
    _c(
        "resource-not-found",
        "Secret or parameter not found",
        "ResourceNotFoundException: a secret or parameter the task definition references does not exist.",
        ["The secret or parameter ARN in the task definition (name, region, account, version suffix)."],
    ),
    _c(
        "out-of-memory",
        "Out of memory",
        "OutOfMemoryError: the container was killed because it used more memory than its limit.",
        [
            "The task and container memory limits in the task definition.",
            "Memory growth in the application (leaks, large batches); the exit code is usually 137.",
        ],
        _GUIDE + "out-of-memory.html",
    ),
    _c(
        "cannot-start-container",
        "Container could not start",
        "CannotStartContainerError: the container runtime could not start the container.",
        ["Memory available to the container.", "The entry point and command exist and are executable.", "The image."],
        _GUIDE + "cannot-start-container.html",
    ),
    _c(
        "cannot-stop-container",
        "Container could not be stopped",
        "CannotStopContainerError: the stop signal could not be delivered to the container.",
        ["Health of the ECS agent and the container runtime on the host."],
    ),
    _c(
        "cannot-inspect-container",
        "Container could not be inspected",
        "CannotInspectContainerError: the agent could not describe the container.",
        ["Health of the container runtime on the host."],
    ),
    _c(
        "cannot-create-volume",
        "Volume could not be created",
        "CannotCreateVolumeError: a volume from the task definition could not be created.",
        ["The volume configuration in the task definition (EFS, Docker volume driver, bind mounts)."],
    ),
    _c(
        "container-runtime-error",
        "Container runtime error",
        "ContainerRuntimeError: containerd returned an unexpected error.",
        ["Usually platform-side: retry; open a support case if it persists."],
    ),
    _c(
        "container-runtime-timeout",
        "Container runtime timeout",
        "ContainerRuntimeTimeoutError / DockerTimeoutError: the container did not reach RUNNING or STOPPED in time.",
        ["Image size and start-up time.", "Load on the host."],
    ),
    _c(
        "internal-error",
        "Internal error",
        "InternalError: a platform-side failure, for example an elastic network interface provisioned too late.",
        ["Retry.", "Open a support case if it persists."],
    ),
    _c(
        "spot-interruption",
        "Spot interruption",
        "Spot capacity was unavailable or was reclaimed by AWS.",
        ["Spread tasks across Availability Zones.", "Add an on-demand capacity provider as a fallback."],
        _GUIDE + "fargate-capacity-providers.html",
    ),
    _c(
        "failed-to-start",
        "Task failed to start",
        "The task never reached RUNNING: no capacity, no free IP address in the subnet, an ENI that could "
        "not attach, a placement constraint that nothing satisfies, or a disconnected agent.",
        [
            "Free IP addresses in the task's subnets.",
            "CPU and memory left on the container instances (RESOURCE:CPU / RESOURCE:MEMORY).",
            "Placement constraints and strategies.",
            "The ECS agent is connected on the container instances.",
        ],
    ),
    _c(
        "infrastructure",
        "Host or infrastructure",
        "The host under the task stopped, was terminated, or ECS replaced the task because of infrastructure health.",
        ["The EC2 instance's history (scale-in of the Auto Scaling group, maintenance, Spot)."],
        kind=ROUTINE,
    ),
    _c(
        "elb-health-check",
        "Failed load balancer health checks",
        "The load balancer marked the task unhealthy and the service scheduler replaced it.",
        [
            "The target group's health check path, port and expected codes.",
            "Start-up time against the health check grace period.",
            "Security groups between the load balancer and the task.",
        ],
        _GUIDE + "troubleshoot-service-load-balancers.html",
    ),
    _c(
        "container-health-check",
        "Failed container health checks",
        "A container's HEALTHCHECK command failed repeatedly, so ECS stopped the task.",
        [
            "The health check command, interval, retries and start period.",
            "That the tools it calls exist in the image.",
        ],
    ),
    _c(
        "deployment",
        "Deployment",
        "The service scheduler replaced the task during a deployment. Expected; exit code 143 is normal here.",
        ["Nothing, unless the new tasks are failing too."],
        _GUIDE + "deployment-type-ecs.html",
        kind=ROUTINE,
    ),
    _c(
        "scale-in",
        "Scale-in",
        "The service scheduler stopped the task because the desired count went down.",
        ["Nothing, unless the scaling was unexpected: check the service's auto scaling policies."],
        _GUIDE + "service-auto-scaling.html",
        kind=ROUTINE,
    ),
    _c(
        "scheduler",
        "Stopped by the service scheduler",
        "The service scheduler stopped the task for a reason ECS did not spell out.",
        ["The service's events for the same minute."],
        kind=ROUTINE,
    ),
    _c(
        "user-initiated",
        "Stopped by a person or tool",
        "Someone (or something) called StopTask; the stopped reason is theirs.",
        ["Who and why: the stopped reason, and CloudTrail's StopTask events."],
        kind=ROUTINE,
    ),
    _c(
        "portal",
        "Stopped through ecsportal",
        "Stopped through this portal's stop action: the reason names the approval request, who asked, "
        "who approved, and why.",
        ["The approval request the reason names (its page has the whole conversation and the audit trail)."],
        kind=ROUTINE,
    ),
    _c(
        "exit-0",
        "Essential container exited cleanly (0)",
        "An essential container's process finished with exit code 0, which stops the whole task.",
        ["Whether the process is meant to run forever (a web server) or is a job that finished."],
        STOPPED_ERRORS_URL,
    ),
    _c(
        "exit-1",
        "Application error (exit 1)",
        "An essential container exited with code 1: the application failed.",
        ["The container's logs just before it exited.", "Configuration and environment variables it needs."],
        STOPPED_ERRORS_URL,
    ),
    _c(
        "exit-137",
        "Killed: SIGKILL (exit 137)",
        "An essential container was killed with SIGKILL: out of memory, or it ignored SIGTERM past the stop timeout.",
        ["Memory usage against the limit.", "Whether the process handles SIGTERM within the stop timeout (30 s)."],
        STOPPED_ERRORS_URL,
    ),
    _c(
        "exit-139",
        "Crashed: segmentation fault (exit 139)",
        "An essential container crashed with SIGSEGV (invalid memory access).",
        ["Native libraries and the image's architecture.", "Core dumps or crash logs."],
        STOPPED_ERRORS_URL,
    ),
    _c(
        "exit-143",
        "Terminated: SIGTERM (exit 143)",
        "An essential container exited after SIGTERM, without a stop reason that says why.",
        ["Who sent SIGTERM: deployments and StopTask do; otherwise the process itself."],
        STOPPED_ERRORS_URL,
    ),
    _c(
        "exit-other",
        "Essential container exited (other code)",
        "An essential container exited with an application-specific non-zero code.",
        ["The container's logs and the application's exit-code conventions."],
        STOPPED_ERRORS_URL,
    ),
    _c(
        "exit-none",
        "Essential container stopped without an exit code",
        "An essential container stopped but ECS recorded no exit code: it never ran, or its state was lost.",
        ["The container's reason field and the agent's logs."],
        STOPPED_ERRORS_URL,
    ),
    _c(
        "unknown",
        "Unknown",
        "The stop reason does not match anything the portal knows yet.",
        ["Read the stopped reason and the containers' reasons below."],
        STOPPED_ERRORS_URL,
    ),
]

CATEGORIES: dict[str, Category] = {c.id: c for c in _ALL}
UNKNOWN = CATEGORIES["unknown"]


def category(category_id: str) -> Category:
    return CATEGORIES.get(category_id, UNKNOWN)


# AWS error names as they prefix stoppedReason or a container reason (stopped-task-error-codes.html).
_ERROR_NAMES: list[tuple[str, str]] = [
    ("CannotPullContainerError", "cannot-pull-container"),
    ("ResourceInitializationError", "resource-initialization"),
    ("ResourceNotFoundException", "resource-not-found"),
    ("OutOfMemoryError", "out-of-memory"),
    ("CannotStartContainerError", "cannot-start-container"),
    ("CannotStopContainerError", "cannot-stop-container"),
    ("CannotInspectContainerError", "cannot-inspect-container"),
    ("CannotCreateVolumeError", "cannot-create-volume"),
    ("ContainerRuntimeTimeoutError", "container-runtime-timeout"),
    ("DockerTimeoutError", "container-runtime-timeout"),
    ("ContainerRuntimeError", "container-runtime-error"),
    ("InternalError", "internal-error"),
    ("SpotInterruptionError", "spot-interruption"),
    ("SpotInterruption", "spot-interruption"),
]
_ERROR_RE = re.compile(r"\b(" + "|".join(name for name, _ in _ERROR_NAMES) + r")\b")
_ERROR_IDS = dict(_ERROR_NAMES)
_OOM_TEXT = re.compile(r"container killed due to memory usage", re.I)

# Known non-error reasons, matched on stoppedReason (case-insensitive).
_REASON_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"spot task was interrupted|spot interruption", re.I), "spot-interruption"),
    (re.compile(r"failed (?:elb|load balancer) health checks?", re.I), "elb-health-check"),
    (re.compile(r"failed container health checks?", re.I), "container-health-check"),
    (re.compile(r"initiated by \(deployment|\bdeployment\b", re.I), "deployment"),
    (re.compile(r"scal(?:ing activity|e-in|ed in|ing in)|desired count", re.I), "scale-in"),
    (re.compile(r"host ec2 \(instance [^)]*\) (?:stopped|terminated)|instance .*(?:terminated|draining)", re.I),
     "infrastructure"),
    (re.compile(r"RESOURCE:[A-Z]+|no container instances? (?:were|was) found|insufficient|free (?:ip|address)|"
                r"\bENI\b|elastic network interface|placement constraint|agent (?:is )?disconnected", re.I),
     "failed-to-start"),
]  # fmt: skip

_STOP_CODES = {
    "SpotInterruption": "spot-interruption",
    "TerminationNotice": "infrastructure",
    "InfrastructureHealth": "infrastructure",
    "TaskFailedToStart": "failed-to-start",
    "ServiceSchedulerInitiated": "scheduler",
    "UserInitiated": "user-initiated",
}
# What `stops.reason.stop_reason` writes into StopTask's reason: `ecsportal #<request>: …`.
PORTAL_REASON = re.compile(r"^ecsportal #(\d+): ")
_ESSENTIAL_EXITED = re.compile(r"essential container in task exited", re.I)
_EXIT_CATEGORIES = {0: "exit-0", 1: "exit-1", 137: "exit-137", 139: "exit-139", 143: "exit-143"}


@dataclass(frozen=True)
class ContainerFacts:
    name: str
    exit_code: int | None
    reason: str = ""


@dataclass(frozen=True)
class Explanation:
    category: Category
    container: str  # the container the category is about; "" when it is the whole task
    reason: str  # the text the category came from (feeds the signature)


def _error_category(text: str) -> str | None:
    if not text:
        return None
    found = _ERROR_RE.search(text)
    if found:
        return _ERROR_IDS[found.group(1)]
    if _OOM_TEXT.search(text):
        return "out-of-memory"
    return None


def _culprit(containers: Sequence[ContainerFacts]) -> ContainerFacts | None:
    """The container whose exit most likely stopped the task.

    A non-zero code other than 143 is the cause; 143 (SIGTERM) and 0 are what the other
    containers usually report when ECS stops them in turn, and 0 is the likelier cause of the
    two (a process that simply finished). No exit code at all comes last.
    """

    def rank(c: ContainerFacts) -> int:
        if c.exit_code is None:
            return 3
        if c.exit_code not in (0, 143):
            return 0
        return 1 if c.exit_code == 0 else 2

    return min(containers, key=rank) if containers else None


def _by_exit_code(containers: Sequence[ContainerFacts], reason: str) -> Explanation:
    culprit = _culprit(containers)
    if culprit is None:
        return Explanation(CATEGORIES["exit-none"], "", reason)
    if culprit.exit_code is None:
        return Explanation(CATEGORIES["exit-none"], culprit.name, reason)
    return Explanation(CATEGORIES[_EXIT_CATEGORIES.get(culprit.exit_code, "exit-other")], culprit.name, reason)


def classify(*, stop_code: str, stopped_reason: str, containers: Sequence[ContainerFacts] = ()) -> Explanation:
    """The category of one stopped task, the container it is about, and the text it came from."""
    stopped_reason = stopped_reason or ""
    if PORTAL_REASON.match(stopped_reason):  # whatever stop code the API reports with it
        return Explanation(CATEGORIES["portal"], "", stopped_reason)
    if stop_code == "UserInitiated":
        return Explanation(CATEGORIES["user-initiated"], "", stopped_reason)
    task_error = _error_category(stopped_reason)
    if task_error:
        match = next((c for c in containers if _error_category(c.reason) == task_error), None)
        return Explanation(CATEGORIES[task_error], match.name if match else "", stopped_reason)
    for c in containers:
        container_error = _error_category(c.reason)
        if container_error:
            return Explanation(CATEGORIES[container_error], c.name, c.reason)
    for pattern, category_id in _REASON_RULES:
        if pattern.search(stopped_reason):
            return Explanation(CATEGORIES[category_id], "", stopped_reason)
    if stop_code == "EssentialContainerExited" or _ESSENTIAL_EXITED.search(stopped_reason):
        return _by_exit_code(containers, stopped_reason)
    if stop_code in _STOP_CODES:
        return Explanation(CATEGORIES[_STOP_CODES[stop_code]], "", stopped_reason)
    if any(c.exit_code not in (None, 0) for c in containers):
        return _by_exit_code(containers, stopped_reason)
    return Explanation(UNKNOWN, "", stopped_reason)


_SIGNALS = {1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 6: "SIGABRT", 8: "SIGFPE", 9: "SIGKILL",
            11: "SIGSEGV", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM"}  # fmt: skip


def exit_code_meaning(code: int | None) -> str:
    """One line a person can act on, for a container's exit code."""
    if code is None:
        return "No exit code: the container never ran, or ECS lost track of it."
    known = {
        0: "Exited cleanly. For an essential container this still stops the task.",
        1: "Application error: the process failed; read its logs.",
        137: "SIGKILL: out of memory, or killed after ignoring SIGTERM for the stop timeout.",
        139: "SIGSEGV: the process crashed on an invalid memory access.",
        143: "SIGTERM: normal when ECS stops a task (deployment, scale-in, StopTask).",
        126: "The command could not be executed (permissions, wrong architecture).",
        127: "Command not found: check the entry point and command.",
    }
    if code in known:
        return known[code]
    if 128 < code < 160:
        signal = _SIGNALS.get(code - 128, f"signal {code - 128}")
        return f"Killed by {signal}."
    return "Application-specific exit code; read the container's logs."


# --- failure signatures: the same failure, whatever IDs, addresses and times it mentions

_NORMALIZERS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\barn:aws[\w-]*:[\w-]+:[\w-]*:\d*:[^\s,;()\"'\]]+"), "<arn>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"), "<time>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<id>"),
    (re.compile(r"\bsha256:[0-9a-fA-F]{12,}\b"), "<digest>"),
    (re.compile(r"\b(?:i|eni|subnet|sg|vpc|vol|ami|attach|eni-attach|r)-[0-9a-f]{8,17}\b"), "<id>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b"), "<ip>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{12,}\b"), "<hash>"),
    (re.compile(r"(?<![\w-])\d+(?:\.\d+)*(?![\w])"), "<n>"),
    (re.compile(r"\s+"), " "),
]
SIGNATURE_TEXT_MAX = 300


def normalize_reason(text: str) -> str:
    """Strip what differs between occurrences of one failure: ARNs, IDs, IPs, hashes, times, numbers."""
    out = text or ""
    for pattern, replacement in _NORMALIZERS:
        out = pattern.sub(replacement, out)
    return out.strip()[:SIGNATURE_TEXT_MAX]


def signature_key(*, category_id: str, family: str, container: str, normalized_reason: str) -> str:
    """A stable 40-character key for grouping rows; equal inputs, equal keys."""
    raw = "\x1f".join((category_id, family, container, normalized_reason))
    return hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()
