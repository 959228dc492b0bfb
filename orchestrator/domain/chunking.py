"""Keyset chunk planning: how a table's boundary keys become transfer runs.

The planner and the dry run walk a table the same way: a boundary query returns every
`chunk_size`-th key after a cursor, up to the table's highest key as the walk began (the
upper key), at most one batch of them per page. This is what they decide from each page;
the queries themselves stay with whoever runs them."""

from __future__ import annotations

from dataclasses import dataclass

Key = list[str]


@dataclass(frozen=True)
class Chunk:
    """One run's key range: after `lower_key` (None: from the start) up to `upper_key`."""

    lower_key: Key | None
    upper_key: Key


@dataclass(frozen=True)
class ChunkPage:
    chunks: list[Chunk]
    cursor: Key | None  # where the next page starts: the last chunk's upper key
    done: bool  # the walk has reached the upper key: ask for no further page


def chunk_page(cursor: Key | None, boundaries: list[Key], upper: Key, batch: int) -> ChunkPage:
    """The chunks of one page of `boundaries` (asked for at most `batch` of them) after
    `cursor`. A page shorter than the batch is the last one: fewer than chunk_size rows
    remain after its last boundary, and they make one more chunk, the tail, up to `upper`."""
    chunks: list[Chunk] = []
    for key in boundaries:
        chunks.append(Chunk(cursor, key))
        cursor = key
    done = len(boundaries) < batch
    if done and cursor != upper:
        chunks.append(Chunk(cursor, upper))
        cursor = upper
    return ChunkPage(chunks, cursor, done)
