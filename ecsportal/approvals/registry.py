"""Actions register here; the gate calls them without importing them.

An action module (e.g. `ecsportal.stops`) calls `register()` from its AppConfig.ready(). The
executor receives the request once it has been claimed for execution, does the work outside
any database transaction, and returns an `Outcome`; raising counts as a failure with the
exception's message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ecsportal.approvals.policy import Policy

if TYPE_CHECKING:
    from ecsportal.approvals.models import ApprovalRequest


@dataclass(frozen=True)
class Outcome:
    ok: bool
    text: str  # shown on the request page and recorded; AWS's error in words on failure


@dataclass(frozen=True)
class Action:
    key: str
    label: str  # "Stop task"
    policy: Policy  # which of the account's approval counts applies
    executor: Callable[[ApprovalRequest], Outcome]
    describe: Callable[[ApprovalRequest], list[str]]  # what will happen, sentence by sentence
    target_url: Callable[[ApprovalRequest], str]  # where the target can be seen ("" for nowhere)


_actions: dict[str, Action] = {}


def register(
    key: str,
    executor: Callable[[ApprovalRequest], Outcome],
    describe: Callable[[ApprovalRequest], list[str]],
    *,
    label: str,
    policy: Policy | str,
    target_url: Callable[[ApprovalRequest], str] | None = None,
) -> None:
    if policy not in Policy.values:
        raise ValueError(f"unknown approval policy {policy!r}; one of {Policy.values}")
    _actions[key] = Action(
        key=key,
        label=label,
        policy=Policy(policy),
        executor=executor,
        describe=describe,
        target_url=target_url or (lambda request: ""),
    )


def get(key: str) -> Action:
    try:
        return _actions[key]
    except KeyError:
        raise LookupError(f"No executor is registered for {key!r}; is its app in INSTALLED_APPS?") from None


def label_for(key: str) -> str:
    action = _actions.get(key)
    return action.label if action else key
