from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ecsportal.stops.reason import LIMIT, stop_reason

names = st.text(min_size=1, max_size=150).filter(lambda s: s.strip())


def test_a_short_reason_is_kept_whole():
    assert stop_reason(request_id=12, reason="runaway report", requester="operator", approvers=["approver"]) == (
        "ecsportal #12: runaway report (requested by operator, approved by approver)"
    )


def test_a_long_reason_is_cut_with_an_ellipsis_and_keeps_who():
    text = stop_reason(request_id=7, reason="word " * 100, requester="operator", approvers=["approver", "approver2"])
    assert len(text) <= LIMIT
    assert text.startswith("ecsportal #7: word word")
    assert text.endswith("… (requested by operator, approved by approver, approver2)")


def test_newlines_in_the_reason_become_spaces():
    text = stop_reason(request_id=1, reason="line one\nline two", requester="a", approvers=["b"])
    assert "line one line two" in text


@settings(max_examples=300, deadline=None)
@given(
    request_id=st.integers(min_value=1, max_value=10**18),
    reason=st.text(min_size=1, max_size=2000),
    requester=names,
    approvers=st.lists(names, max_size=25),
    break_glass=st.booleans(),
)
def test_the_reason_never_exceeds_255_characters(request_id, reason, requester, approvers, break_glass):
    text = stop_reason(
        request_id=request_id, reason=reason, requester=requester, approvers=approvers, break_glass=break_glass
    )
    assert len(text) <= LIMIT
    assert text.startswith(f"ecsportal #{request_id}: ")
    assert " (requested by " in text and text.endswith(")")


@settings(max_examples=200, deadline=None)
@given(reason=st.text(alphabet="abc xyz", min_size=1, max_size=600))
def test_ordinary_names_are_always_kept_whole(reason):
    text = stop_reason(request_id=123456, reason=reason, requester="operator", approvers=["approver", "approver2"])
    assert len(text) <= LIMIT
    assert text.endswith(" (requested by operator, approved by approver, approver2)")
