"""StopTask's `reason`: who asked, who approved, and why, in at most 255 characters.

`ecsportal #<request>: <reason> (requested by <user>, approved by <users>)`. When it does not
fit, the free-text reason is shortened with an ellipsis, never the request number or the
names; only absurdly long names are themselves shortened, so the reason always keeps room.
"""

from __future__ import annotations

LIMIT = 255  # StopTask's documented maximum
WHO_MAX = 120  # the names never take more than this, so the reason keeps at least ~100 characters
ELLIPSIS = "…"


def cut(text: str, size: int) -> str:
    """`text` in at most `size` characters, cut at a word boundary when one is near, with an ellipsis."""
    if len(text) <= size:
        return text
    if size <= 1:
        return ELLIPSIS[:size]
    head = text[: size - 1]
    space = head.rfind(" ")
    if space >= size // 2:
        head = head[:space]
    return head.rstrip(" ,;:-") + ELLIPSIS


def _who(requester: str, approvers: list[str], break_glass: bool) -> str:
    if break_glass:
        approved = "break-glass, no approval"
    elif approvers:
        approved = "approved by " + ", ".join(approvers)
    else:
        approved = "no approval required"
    return f"requested by {requester}, {approved}"


def stop_reason(
    *, request_id: int, reason: str, requester: str, approvers: list[str], break_glass: bool = False
) -> str:
    prefix = f"ecsportal #{request_id}: "
    text = " ".join(reason.split())  # one line: newlines and runs of spaces read badly in the console
    requester = " ".join(requester.split())
    approvers = [" ".join(a.split()) for a in approvers]
    who = _who(requester, approvers, break_glass)
    if len(who) > WHO_MAX:
        shown = [cut(a, 24) for a in approvers[:3]]
        if len(approvers) > 3:
            shown.append(f"{len(approvers) - 3} more")
        who = cut(_who(cut(requester, 40), shown, break_glass), WHO_MAX)
    tail = f" ({who})"
    return prefix + cut(text, LIMIT - len(prefix) - len(tail)) + tail
