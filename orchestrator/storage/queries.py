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

A piece of SQL several statements must share word for word (what a claim writes on a run,
say) is a part: `-- part: claim_write` opens it like a block, and `{part.claim_write}` on a
line of its own includes it there, indented as the placeholder is. Parts are not statements
(`q()` does not find them); a part may include other parts one level deep; a part used
nowhere, or used but missing, is an error at load. A part shared by statements whose
parameters are numbered differently names its own `$1`, `$2`, ... and is included with
arguments, `{part.claim_write($4, $5)}`: its parameters are replaced by them in order.

A server-side function that runs named statements as they are (batches.sql's
complete_batch) includes each by name: `{statement.claim_queued_anywhere(v_want, p_lease,
p_worker)}` on a line of its own is that block's text without its `;`, its `$1`, `$2`, ...
replaced by the arguments in order (the function's parameters and variables). The
statement is then word for word the one the Python path sends, parts included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from functools import cache
from importlib import resources

from orchestrator.domain import states

_NAME = re.compile(r"^--\s*(name|part):\s*(\w+)\s*$", re.MULTILINE)
_PART = re.compile(r"^([ \t]*)\{part\.(\w+)(?:\(([^)]*)\))?\}[ \t]*$", re.MULTILINE)
_STATEMENT = re.compile(r"^([ \t]*)\{statement\.(\w+)\(([^)]*)\)\}[ \t]*$", re.MULTILINE)
_PARAM = re.compile(r"\$(\d+)(?!\d)")
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


def _include(blocks: dict[str, str], parts: dict[str, str], used: set[str]) -> dict[str, str]:
    def part(match: re.Match[str]) -> str:
        indent, name = match.group(1), match.group(2)
        if name not in parts:
            raise RuntimeError(f"SQL part {name!r} is used but not defined")
        used.add(name)
        text = parts[name]
        if match.group(3) is not None:
            text = _with_arguments(f"part {name!r}", text, match.group(3))
        return "\n".join(indent + line if line else line for line in text.splitlines())

    return {name: _PART.sub(part, body) for name, body in blocks.items()}


def _with_arguments(what: str, text: str, arguments: str) -> str:
    """`text` with its `$1`, `$2`, ... replaced by `arguments` (comma-separated) in order."""
    args = [a.strip() for a in arguments.split(",") if a.strip()]

    def param(p: re.Match[str]) -> str:
        n = int(p.group(1))
        if not 1 <= n <= len(args):
            raise RuntimeError(f"SQL {what} uses ${n}: {len(args)} arguments given")
        return args[n - 1]

    return _PARAM.sub(param, text)


def _statements(blocks: dict[str, str]) -> dict[str, str]:
    """`{statement.name(a, b)}` placeholders replaced (one level: the included blocks are
    taken as they are)."""

    def statement(match: re.Match[str]) -> str:
        indent, name = match.group(1), match.group(2)
        if name not in blocks:
            raise RuntimeError(f"SQL statement {name!r} is included but not defined")
        text = blocks[name].rstrip().removesuffix(";")
        text = _with_arguments(f"statement {name!r}", text, match.group(3))
        return "\n".join(indent + line if line else line for line in text.splitlines())

    return {name: _STATEMENT.sub(statement, body) for name, body in blocks.items()}


def parse(files: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The named statements of `files` (file name, text), parts included, states rendered."""
    blocks: dict[str, str] = {}
    parts: dict[str, str] = {}
    for filename, text in files:
        pieces = _NAME.split(text)
        # pieces: [preamble, kind1, name1, body1, kind2, name2, body2, ...]
        for kind, name, body in zip(pieces[1::3], pieces[2::3], pieces[3::3], strict=True):
            if name in blocks or name in parts:
                raise RuntimeError(f"SQL block {name!r} is named twice (again in {filename})")
            if kind == "part":
                # A part's opening comment says what it is; it is not copied into statements.
                lines = body.strip().splitlines()
                while lines and lines[0].startswith("--"):
                    lines.pop(0)
                parts[name] = render("\n".join(lines))
            else:
                blocks[name] = render(body.strip())
    used: set[str] = set()
    # A part may include other parts (one level: a part that includes parts is not itself
    # included by a part).
    parts = _include(parts, parts, used)
    blocks = _include(blocks, parts, used)
    if unused := sorted(set(parts) - used):
        raise RuntimeError(f"SQL parts used nowhere: {unused}")
    return _statements(blocks)


@cache
def _load() -> dict[str, str]:
    return parse(_files())


def q(name: str) -> str:
    return _load()[name]
