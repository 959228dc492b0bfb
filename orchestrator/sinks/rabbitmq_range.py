"""A key range read as finished message bodies: Postgres renders each row as JSON (json_sql),
and for arrays of rows joins them, so the rabbitmq sink only frames and publishes. The
bodies are the bytes the Python path (encoding.RowEncoder) would have written for the same
rows; a table with a column type Postgres cannot render that way gets no query (None) and
keeps the Python path."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.sinks.json_sql import array_json, object_json
from orchestrator.sinks.ranges import KeyRange
from orchestrator.sources.tables import quote_ident


@dataclass(frozen=True)
class MessageQuery:
    """SELECT of one message per result row, in key order: (key, body) for a message per
    row, (first key, last key, body, rows) for arrays, where keys are JSON arrays and bodies
    JSON text. Params: those of the range."""

    sql: str


def message_query(page: KeyRange, batch_size: int) -> MessageQuery | None:
    keys = page.keyset.key_columns
    types = [page.column_types.get(c, "") for c in page.columns]
    key_types = [page.column_types.get(c, "") for c in keys]
    if any(k not in page.columns for k in keys):
        return None
    body = object_json(page.columns, types, "t")
    key = array_json(keys, key_types, "t")
    if body is None or key is None:
        return None
    source, _ = page.select()
    order = ", ".join(f"t.{quote_ident(c)}" for c in keys)
    if batch_size == 1:
        return MessageQuery(f"SELECT {key} AS k, {body} AS b FROM ({source}) AS t ORDER BY {order}")
    # Rows numbered in key order and cut into arrays of batch_size, as the Python path cuts
    # a page; the first and last key of each array go into its headers.
    return MessageQuery(
        "SELECT (array_agg(m.k ORDER BY m.i))[1] AS k, (array_agg(m.k ORDER BY m.i DESC))[1] AS l,"
        " '[' || string_agg(m.b, ',' ORDER BY m.i) || ']' AS b, count(*) AS n"
        f" FROM (SELECT row_number() OVER (ORDER BY {order}) - 1 AS i, {key} AS k, {body} AS b"
        f" FROM ({source}) AS t) AS m"
        f" GROUP BY m.i / {int(batch_size)} ORDER BY m.i / {int(batch_size)}"
    )
