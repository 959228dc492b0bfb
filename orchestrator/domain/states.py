"""State machines as tables: the one source of the states. Every transition is validated
here; the SQL repeats the guard (`UPDATE ... WHERE state = ANY($allowed)`), so a concurrent
change shows up as zero rows. The SQL names no state of its own: its state literals and
sets are rendered from this module when it is loaded (orchestrator.storage.queries), and a
test ties the migrations' CHECK constraints to the enums below."""

from __future__ import annotations

from enum import StrEnum

from orchestrator.errors import InvalidTransition


class BackfillState(StrEnum):
    # A draft is stored but not started: it may still change, holds nothing against
    # overlaps, and is never planned (Mage creates backfills this way).
    DRAFT = "draft"
    CREATED = "created"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunState(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


B = BackfillState
R = RunState

BACKFILL_TRANSITIONS: dict[BackfillState, frozenset[BackfillState]] = {
    B.DRAFT: frozenset({B.CREATED, B.CANCELLED}),
    B.CREATED: frozenset({B.SCHEDULED, B.PAUSED, B.CANCELLED, B.COMPLETED, B.FAILED}),
    B.SCHEDULED: frozenset({B.RUNNING, B.PAUSED, B.CANCELLED, B.COMPLETED, B.FAILED}),
    B.RUNNING: frozenset({B.PAUSED, B.COMPLETED, B.FAILED, B.CANCELLED}),
    B.PAUSED: frozenset({B.RUNNING, B.SCHEDULED, B.CANCELLED}),
    # A failed backfill may be retried (back to running) or cancelled.
    B.FAILED: frozenset({B.RUNNING, B.CANCELLED}),
    B.COMPLETED: frozenset(),
    B.CANCELLED: frozenset(),
}

RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    R.PENDING: frozenset({R.QUEUED, R.CANCELLED}),
    R.QUEUED: frozenset({R.RUNNING, R.PENDING, R.CANCELLED}),
    R.RUNNING: frozenset({R.COMPLETED, R.FAILED, R.PENDING}),
    R.COMPLETED: frozenset(),
    R.FAILED: frozenset({R.PENDING}),
    R.CANCELLED: frozenset(),
}

BACKFILL_FINAL = frozenset({B.COMPLETED, B.CANCELLED})
BACKFILL_TERMINAL = frozenset({B.COMPLETED, B.FAILED, B.CANCELLED})
# States in which a backfill holds its (target, table) or date range against overlaps.
BACKFILL_ACTIVE = frozenset({B.CREATED, B.SCHEDULED, B.RUNNING, B.PAUSED})
# States in which a backfill may still be re-planned (and only until its first run starts).
BACKFILL_REPLANNABLE = frozenset({B.CREATED, B.SCHEDULED, B.PAUSED})
# States in which runs may be dispatched and claimed.
BACKFILL_DISPATCHABLE = frozenset({B.SCHEDULED, B.RUNNING})
RUN_TERMINAL = frozenset({R.COMPLETED, R.FAILED, R.CANCELLED})
# Runs that hold one of the backfill's max_active_runs slots.
RUN_ACTIVE = frozenset({R.QUEUED, R.RUNNING})
# Runs with work still ahead of them: what makes a backfill count for the fair share.
RUN_UNFINISHED = frozenset(RunState) - RUN_TERMINAL
# Runs that ran to an end (not cancelled): what `reprocess` and the throughput read.
RUN_OUTCOMES = frozenset({R.COMPLETED, R.FAILED})


def valid_backfill_moves(current: BackfillState) -> list[str]:
    return sorted(s.value for s in BACKFILL_TRANSITIONS[current])


def check_backfill_transition(current: BackfillState, requested: BackfillState) -> None:
    if requested not in BACKFILL_TRANSITIONS[current]:
        # .value: an enum's repr would put "<BackfillState.X: 'x'>" into the API's message.
        raise InvalidTransition(
            "backfill", current.value, requested.value, valid_backfill_moves(current)
        )


def check_run_transition(current: RunState, requested: RunState) -> None:
    if requested not in RUN_TRANSITIONS[current]:
        raise InvalidTransition(
            "run", current.value, requested.value, sorted(s.value for s in RUN_TRANSITIONS[current])
        )


def sources_for(requested: BackfillState) -> list[str]:
    """The backfill states from which `requested` may be reached: the SQL guard."""
    return sorted(s.value for s, targets in BACKFILL_TRANSITIONS.items() if requested in targets)


def resume_state(started: bool) -> BackfillState:
    """A paused backfill goes back to where it was: running once a run has started."""
    return B.RUNNING if started else B.SCHEDULED


# The user-facing actions on a backfill and the state each one leads to. Resume exists only
# from paused: a failed backfill is retried, which is another action.
ACTIONS: dict[str, BackfillState] = {
    "cancel": B.CANCELLED,
    "pause": B.PAUSED,
    "resume": B.RUNNING,
}


def valid_actions(current: BackfillState) -> list[str]:
    valid = [a for a, s in ACTIONS.items() if a != "resume" and s in BACKFILL_TRANSITIONS[current]]
    if current == B.PAUSED:
        valid.append("resume")
    if current == B.FAILED:
        # Retry puts failed runs back to pending (it also works on a backfill that is still
        # running with some runs failed, but from failed it is the way on).
        valid.append("retry")
    return sorted(valid)


def action_target(current: BackfillState, action: str, *, started: bool) -> BackfillState:
    """The state `action` moves a backfill to from `current`, or InvalidTransition naming the
    actions that are valid from there."""
    if action not in valid_actions(current):
        raise InvalidTransition(
            "backfill", current.value, action, valid_actions(current), action=True
        )
    return resume_state(started) if action == "resume" else ACTIONS[action]


# Where each action leaves a backfill: asking for it again there changes nothing and is
# answered with the backfill as it is, so a client may retry an action after a timeout.
# Resume is satisfied by any state that is neither paused nor ended (created, scheduled and
# running all go on without it).
_ACTION_HOLDS: dict[str, frozenset[BackfillState]] = {
    "cancel": frozenset({B.CANCELLED}),
    "pause": frozenset({B.PAUSED}),
    "resume": frozenset({B.CREATED, B.SCHEDULED, B.RUNNING}),
}


def action_holds(current: BackfillState, action: str) -> bool:
    """Whether a backfill in `current` is already where `action` would take it."""
    return current in _ACTION_HOLDS.get(action, frozenset())
