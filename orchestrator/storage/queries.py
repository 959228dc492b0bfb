"""Named SQL blocks (`-- name: claim_run`) from the .sql files beside the storage modules
(sql/<aggregate>.sql), loaded once into one namespace: a name repeated in two files is an
error, so a block is found by its name alone.

The state machines' states reach the SQL from `orchestrator.domain.states`, substituted as
text when the files are loaded, so the SQL holds no state literal of its own and prepared
statements stay as fast as hand-written ones:

- `{run.pending}`, `{backfill.running}`: one state, rendered `'pending'` (the lowercase
  name must be a state of that machine);
- `{run.ACTIVE}`, `{backfill.DISPATCHABLE}`: a set of states, rendered `('queued',
  'running')`, read from the domain's `RUN_ACTIVE`, `BACKFILL_DISPATCHABLE` and so on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from functools import cache
from importlib import resources

from orchestrator.domain import states

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_STATE = re.compile(r"\{(run|backfill)\.(\w+)\}")
_MACHINES: dict[str, type[StrEnum]] = {"run": states.RunState, "backfill": states.BackfillState}


def _literal(state: str) -> str:
    # State values are lowercase words (checked by their enums); quoting is enough.
    return f"'{state}'"


def _state_text(match: re.Match[str]) -> str:
    machine, name = match.group(1), match.group(2)
    if name.islower():
        return _literal(_MACHINES[machine](name).value)
    members: Iterable[StrEnum] = getattr(states, f"{machine.upper()}_{name}")
    return "(" + ", ".join(_literal(s.value) for s in sorted(members)) + ")"


def render(text: str) -> str:
    """SQL text with its state placeholders replaced by the domain's states."""
    return _STATE.sub(_state_text, text)


def _files() -> list[tuple[str, str]]:
    folder = resources.files("orchestrator.storage").joinpath("sql")
    return sorted(
        (entry.name, entry.read_text())
        for entry in folder.iterdir()
        if entry.is_file() and entry.name.endswith(".sql")
    )


@cache
def _load() -> dict[str, str]:
    blocks: dict[str, str] = {}
    for filename, text in _files():
        parts = _NAME.split(text)
        # parts: [preamble, name1, body1, name2, body2, ...]
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in blocks:
                raise RuntimeError(f"SQL block {name!r} is named twice (again in {filename})")
            blocks[name] = render(body.strip())
    return blocks


def q(name: str) -> str:
    return _load()[name]
