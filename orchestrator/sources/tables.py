"""Source tables: what their keys are, and the keyset SQL that plans and reads them.

Keys travel as Postgres text (`col::text`) and come back through `$n::text::<type>`, so every
key type (integer, uuid, text, timestamp, numeric…) round-trips exactly without the
orchestrator knowing how to encode it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from orchestrator.errors import SourceError


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class TableShape:
    schema: str
    name: str
    columns: list[str]
    key_columns: list[str]  # sort column first (if any), then the unique key
    key_types: list[str]
    sort_column: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def sql_name(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"


_RELATION = """
SELECT c.oid, n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')
"""

_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull
FROM pg_attribute a
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

# The primary key, else the narrowest unique index over NOT NULL columns without predicate
# or expressions: either identifies a row, which keyset pagination needs.
_UNIQUE_KEY = """
SELECT array_agg(a.attname ORDER BY k.ord) AS cols
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
  AND i.indexprs IS NULL
GROUP BY i.indexrelid, i.indisprimary
HAVING bool_and(a.attnotnull)
ORDER BY i.indisprimary DESC, count(*), i.indexrelid
LIMIT 1
"""


async def describe_table(
    conn: asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any],
    table: str,
    sort_column: str | None,
) -> TableShape:
    rel = await conn.fetchrow(_RELATION, table)
    if rel is None:
        raise SourceError(f"table {table!r} does not exist in the source")
    columns = await conn.fetch(_COLUMNS, rel["oid"])
    types = {r["attname"]: r["type"] for r in columns}
    not_null = {r["attname"]: r["attnotnull"] for r in columns}
    key = await conn.fetchval(_UNIQUE_KEY, rel["oid"])
    if not key:
        raise SourceError(
            f"table {table!r} has no primary key or unique index over NOT NULL columns; "
            "a backfill needs one to page through it in key order"
        )
    key_columns = list(key)
    if sort_column is not None and sort_column not in key_columns:
        if sort_column not in types:
            raise SourceError(f"sort_column {sort_column!r} is not a column of {table!r}")
        if not not_null[sort_column]:
            # Rows whose sort value is NULL would fall outside every keyset range.
            raise SourceError(
                f"sort_column {sort_column!r} of {table!r} is nullable; "
                "choose a NOT NULL column (or make it NOT NULL)"
            )
        key_columns = [sort_column, *key_columns]
    elif sort_column is not None:
        key_columns = [sort_column, *[c for c in key_columns if c != sort_column]]
    return TableShape(
        schema=rel["nspname"],
        name=rel["relname"],
        columns=[r["attname"] for r in columns],
        key_columns=key_columns,
        key_types=[types[c] for c in key_columns],
        sort_column=sort_column or key_columns[0],
    )


# The planner assumes a table never vacuumed has at least this many pages (PostgreSQL's
# table_block_relation_estimate_size), which overstates a small fresh table tenfold.
_PLANNER_MIN_PAGES = 10


async def estimate_rows(
    conn: asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any], table: str
) -> int | None:
    """A row estimate that never scans the table. pg_class.reltuples once the table has been
    analysed; when it is unknown (-1: never analysed or vacuumed) or stale at 0 while the
    table has pages, the planner's own estimate (`EXPLAIN`: the table's current pages times
    the tuple density it assumes). An empty heap is 0. None only when there is no such
    table."""
    row = await conn.fetchrow(
        "SELECT c.reltuples, c.relpages, c.relkind,"
        " pg_relation_size(c.oid) / current_setting('block_size')::bigint AS pages"
        " FROM pg_class c WHERE c.oid = to_regclass($1)",
        table,
    )
    if row is None:
        return None
    reltuples, pages, partitioned = row["reltuples"], row["pages"], row["relkind"] == "p"
    if reltuples > 0:
        return int(reltuples)
    if pages == 0 and not partitioned:  # a partitioned table's rows live in its partitions
        return 0
    planned = await planner_rows(conn, table_sql(table))
    if row["relpages"] == 0 and not partitioned and pages < _PLANNER_MIN_PAGES:
        planned = planned * pages // _PLANNER_MIN_PAGES
    return planned


async def planner_rows(
    conn: asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any], relation_sql: str
) -> int:
    """The rows the planner expects a full read of a relation to return."""
    plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {relation_sql}")
    parsed = json.loads(plan) if isinstance(plan, str) else plan
    return int(parsed[0]["Plan"]["Plan Rows"])


def table_sql(qualified: str) -> str:
    """`schema.table` as a quoted SQL name."""
    schema, name = qualified.split(".", 1)
    return f"{quote_ident(schema)}.{quote_ident(name)}"


@dataclass(frozen=True)
class KeysetSql:
    """SQL for one table's keyset scans. Parameters: key values as text, cast back to type."""

    table_sql: str
    key_columns: list[str]
    key_types: list[str]

    @classmethod
    def build(cls, table_sql: str, key_columns: list[str], key_types: list[str]) -> KeysetSql:
        return cls(table_sql, key_columns, key_types)

    def _cols(self, prefix: str = "") -> str:
        return ", ".join(prefix + quote_ident(c) for c in self.key_columns)

    def _text_cols(self) -> str:
        # Aliased: an output column named like a key column would capture ORDER BY and sort
        # by its text ('9999' > '10000').
        return ", ".join(
            f"t.{quote_ident(c)}::text AS k{i}" for i, c in enumerate(self.key_columns)
        )

    def _params(self, first: int) -> str:
        return ", ".join(f"${first + i}::text::{t}" for i, t in enumerate(self.key_types))

    def _order(self, desc: bool = False, prefix: str = "") -> str:
        suffix = " DESC" if desc else ""
        return ", ".join(prefix + quote_ident(c) + suffix for c in self.key_columns)

    def _range(self, lower: bool, upper: bool, first: int) -> tuple[str, int]:
        """WHERE clause for (lower, upper]; returns it and the next parameter number."""
        n = len(self.key_columns)
        clauses = []
        if lower:
            clauses.append(f"({self._cols()}) > ({self._params(first)})")
            first += n
        if upper:
            clauses.append(f"({self._cols()}) <= ({self._params(first)})")
            first += n
        return (" AND ".join(clauses) or "true"), first

    def max_key(self) -> str:
        return (
            f"SELECT {self._text_cols()} FROM {self.table_sql} AS t "
            f"ORDER BY {self._order(True, 't.')} LIMIT 1"
        )

    def count_upto(self) -> str:
        where, _ = self._range(False, True, 1)
        return f"SELECT count(*) FROM {self.table_sql} WHERE {where}"

    def boundaries(self, has_lower: bool) -> str:
        """Every chunk_size-th key after the cursor, for up to `runs` chunks.
        Params: [lower…], upper…, chunk_size * runs, chunk_size."""
        where, nxt = self._range(has_lower, True, 1)
        names = ", ".join(f"k{i}" for i in range(len(self.key_columns)))
        as_text = ", ".join(
            f"{quote_ident(c)}::text AS k{i}" for i, c in enumerate(self.key_columns)
        )
        return (
            f"SELECT {names} FROM ("
            f"  SELECT {as_text}, row_number() OVER (ORDER BY {self._order()}) AS rn"
            f"  FROM (SELECT {self._cols()} FROM {self.table_sql} WHERE {where}"
            f"        ORDER BY {self._order()} LIMIT ${nxt}) AS page"
            f") AS numbered WHERE rn % ${nxt + 1} = 0 ORDER BY rn"
        )

    def read_batch(self, has_lower: bool) -> str:
        """Rows after the cursor up to the run's upper key, keys first as text.
        Params: [lower…], upper…, limit."""
        where, nxt = self._range(has_lower, True, 1)
        return (
            f"SELECT {self._text_cols()}, t.* FROM {self.table_sql} AS t WHERE {where} "
            f"ORDER BY {self._order(prefix='t.')} LIMIT ${nxt}"
        )
