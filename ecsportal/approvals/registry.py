"""Actions register here; the gate calls them without importing them.

An action module (e.g. `ecsportal.stops`) calls `register()` from its AppConfig.ready(). The
executor receives the request once it has been claimed for execution, does the work outside
any database transaction, and returns an `Outcome`; raising counts as a failure with the
exception's message.

A request that closes without running its action (rejected, expired, withdrawn, failed) calls
the action's `on_closed` hook after the commit, so the action's own object (a run waiting on
the request, say) can end at once and say why; a hook that fails is logged, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ecsportal.approvals.policy import Policy

if TYPE_CHECKING:
    from ecsportal.approvals.models import ApprovalRequest

logger = logging.getLogger(__name__)


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
    on_closed: Callable[[ApprovalRequest], object] | None = None  # closed without running the action


_actions: dict[str, Action] = {}


def register(
    key: str,
    executor: Callable[[ApprovalRequest], Outcome],
    describe: Callable[[ApprovalRequest], list[str]],
    *,
    label: str,
    policy: Policy | str,
    target_url: Callable[[ApprovalRequest], str] | None = None,
    on_closed: Callable[[ApprovalRequest], object] | None = None,
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
        on_closed=on_closed,
    )


def get(key: str) -> Action:
    try:
        return _actions[key]
    except KeyError:
        raise LookupError(f"No executor is registered for {key!r}; is its app in INSTALLED_APPS?") from None


def label_for(key: str) -> str:
    action = _actions.get(key)
    return action.label if action else key


def closed(request: ApprovalRequest) -> None:
    """Tell the request's action that it closed without running (see the module's docstring)."""
    action = _actions.get(request.action)
    if action is None or action.on_closed is None:
        return
    try:
        action.on_closed(request)
    except Exception:
        logger.exception("the on_closed hook of approval request %s failed", request.pk)
