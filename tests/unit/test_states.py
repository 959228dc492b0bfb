from __future__ import annotations

import itertools

import pytest

from orchestrator.domain.states import (
    ACTIONS,
    BACKFILL_FINAL,
    BACKFILL_TRANSITIONS,
    RUN_TRANSITIONS,
    BackfillState,
    RunState,
    action_holds,
    action_target,
    check_backfill_transition,
    check_run_transition,
    resume_state,
    sources_for,
    valid_actions,
    valid_backfill_moves,
)
from orchestrator.errors import InvalidTransition

B = BackfillState
R = RunState


def test_tables_cover_every_state() -> None:
    assert set(BACKFILL_TRANSITIONS) == set(BackfillState)
    assert set(RUN_TRANSITIONS) == set(RunState)
    for targets in BACKFILL_TRANSITIONS.values():
        assert targets <= set(BackfillState)
    for run_targets in RUN_TRANSITIONS.values():
        assert run_targets <= set(RunState)


@pytest.mark.parametrize(("current", "requested"), list(itertools.product(B, B)))
def test_backfill_transitions(current: BackfillState, requested: BackfillState) -> None:
    allowed = BACKFILL_TRANSITIONS[current]
    if requested in allowed:
        check_backfill_transition(current, requested)
        return
    with pytest.raises(InvalidTransition) as info:
        check_backfill_transition(current, requested)
    expected = sorted(s.value for s in allowed)
    assert info.value.valid == expected
    assert info.value.extra["valid_states"] == expected
    assert info.value.current == current.value
    assert info.value.requested == requested.value
    assert info.value.code == "invalid_state_transition"
    assert info.value.status == 422
    # The message shows plain state names, not enum reprs.
    assert f"from '{current.value}' to '{requested.value}'" in info.value.detail
    assert "BackfillState" not in info.value.detail


@pytest.mark.parametrize(("current", "requested"), list(itertools.product(R, R)))
def test_run_transitions(current: RunState, requested: RunState) -> None:
    allowed = RUN_TRANSITIONS[current]
    if requested in allowed:
        check_run_transition(current, requested)
        return
    with pytest.raises(InvalidTransition) as info:
        check_run_transition(current, requested)
    assert info.value.valid == sorted(s.value for s in allowed)
    assert f"from '{current.value}' to '{requested.value}'" in info.value.detail
    assert "RunState" not in info.value.detail


@pytest.mark.parametrize("state", sorted(BACKFILL_FINAL))
def test_final_backfill_states_go_nowhere(state: BackfillState) -> None:
    assert BACKFILL_TRANSITIONS[state] == frozenset()
    assert valid_backfill_moves(state) == []
    assert valid_actions(state) == []
    for requested in B:
        with pytest.raises(InvalidTransition, match=r"none \(the state is final\)"):
            check_backfill_transition(state, requested)


def test_final_states_are_exactly_completed_and_cancelled() -> None:
    assert {B.COMPLETED, B.CANCELLED} == BACKFILL_FINAL
    assert {s for s, t in BACKFILL_TRANSITIONS.items() if not t} == BACKFILL_FINAL
    assert {s for s, t in RUN_TRANSITIONS.items() if not t} == {R.COMPLETED, R.CANCELLED}


@pytest.mark.parametrize("requested", list(B))
def test_sources_for_inverts_the_table(requested: BackfillState) -> None:
    sources = sources_for(requested)
    assert sources == sorted(sources)
    assert set(sources) == {s.value for s in B if requested in BACKFILL_TRANSITIONS[s]}
    for current in B:
        assert (current.value in sources) == (requested in BACKFILL_TRANSITIONS[current])


def test_only_a_draft_becomes_created_and_nothing_becomes_a_draft() -> None:
    assert sources_for(B.CREATED) == ["draft"]
    assert sources_for(B.DRAFT) == []


def test_a_draft_starts_or_is_cancelled_and_cannot_be_paused() -> None:
    assert BACKFILL_TRANSITIONS[B.DRAFT] == {B.CREATED, B.CANCELLED}
    assert valid_actions(B.DRAFT) == ["cancel"]


def test_resume_state() -> None:
    assert resume_state(started=True) is B.RUNNING
    assert resume_state(started=False) is B.SCHEDULED
    # Either resume target must be reachable from paused.
    assert {B.RUNNING, B.SCHEDULED} <= BACKFILL_TRANSITIONS[B.PAUSED]


@pytest.mark.parametrize("current", list(B))
def test_actions(current: BackfillState) -> None:
    valid = valid_actions(current)
    assert ("resume" in valid) == (current is B.PAUSED)
    for action in ACTIONS:
        if action in valid:
            target = action_target(current, action, started=True)
            check_backfill_transition(current, target)
        else:
            with pytest.raises(InvalidTransition) as info:
                action_target(current, action, started=True)
            assert info.value.valid == valid


def test_resume_goes_back_to_where_it_was() -> None:
    assert action_target(B.PAUSED, "resume", started=False) is B.SCHEDULED
    assert action_target(B.PAUSED, "resume", started=True) is B.RUNNING


def test_failed_backfill_cannot_be_resumed_only_cancelled() -> None:
    assert valid_actions(B.FAILED) == ["cancel", "retry"]


@pytest.mark.parametrize(("current", "action"), list(itertools.product(B, ACTIONS)))
def test_an_action_holds_only_where_it_leads(current: BackfillState, action: str) -> None:
    """A repeated action is answered unchanged only in the state it would lead to; anywhere
    else it is either valid (and moves) or refused."""
    holds = action_holds(current, action)
    expected = {
        "cancel": {B.CANCELLED},
        "pause": {B.PAUSED},
        "resume": {B.CREATED, B.SCHEDULED, B.RUNNING},
    }[action]
    assert holds == (current in expected)
    if holds:
        assert action not in valid_actions(current)
