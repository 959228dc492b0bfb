"""Changing the backfill state machine is the domain's table plus a migration; each
compatibility dialect must then say what the new state is called in its vocabulary. These
tests name the dialect whose map a new state is missing from, instead of a KeyError in a
response later."""

from __future__ import annotations

import pytest

from api.compat import mage, sequin, supermetrics
from orchestrator.domain.states import BackfillState

# Drafts exist only through Mage's API (a backfill made before it is started); Sequin and
# Supermetrics never list or show one, so their maps leave it out on purpose.
NO_DRAFTS = frozenset(BackfillState) - {BackfillState.DRAFT}


@pytest.mark.parametrize(
    ("dialect", "mapping", "states"),
    [
        ("mage", mage._STATUS_OF, frozenset(BackfillState)),
        ("sequin", sequin._STATE_OF, NO_DRAFTS),
        ("supermetrics", supermetrics._STATUS_OF, NO_DRAFTS),
    ],
)
def test_every_dialect_names_every_backfill_state(
    dialect: str, mapping: dict[BackfillState, object], states: frozenset[BackfillState]
) -> None:
    assert set(mapping) == states, f"{dialect}: map these states: {states - set(mapping)}"
