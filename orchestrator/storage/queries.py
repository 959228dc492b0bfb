"""Named SQL blocks from queries.sql (`-- name: claim_run`), loaded once."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def _load() -> dict[str, str]:
    text = resources.files("orchestrator.storage").joinpath("sql/queries.sql").read_text()
    parts = _NAME.split(text)
    # parts: [preamble, name1, body1, name2, body2, ...]
    blocks = {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
    if len(blocks) != len(parts[1::2]):
        raise RuntimeError("queries.sql has a repeated block name")
    return blocks


def q(name: str) -> str:
    return _load()[name]
