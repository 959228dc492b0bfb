"""Where sources live relative to each other, which decides how rows may move between them."""

from __future__ import annotations


def same_database(read_source: str, write_source: str) -> bool:
    """Whether rows read from `read_source` may be written to `write_source` by one statement
    inside the database, never leaving it.

    Only the same named source qualifies: two names may point at one database through
    different roles or grants, and a single statement runs with one connection's rights. The
    caller has already checked that the team may read the one and write the other."""
    return read_source == write_source
