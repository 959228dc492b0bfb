"""Rows rendered as JSON by Postgres itself, byte for byte as orchestrator.sinks.encoding
writes them, so a sink can take JSON text from the source without decoding a row in Python.

Only types whose rendering can be matched exactly are covered; for any other column type the
builders answer None and the caller keeps the Python path (encoding.py). Covered:

- smallint, integer, bigint, boolean: Postgres's own text (the same digits, true/false)
- text, varchar, char: to_json (it escapes exactly the characters Python's json does)
- uuid, numeric: quoted text (numeric keeps its scale, "NaN", "Infinity", as Decimal does)
- json, jsonb: the stored text, spliced as it is
- timestamptz (in UTC), timestamp, date: ISO 8601 as Python's isoformat prints it (the
  fraction only when not zero, and then all six digits); ±infinity as "infinity"/"-infinity".
  Where Python's datetime falls short they part: years after 9999 or BC fail the Python path
  and render here as to_char prints them; 9999-12-31 23:59:59.999999 (datetime.max, which
  the driver also gives for infinity) is "infinity" there and itself here
- bytea: base64 without line breaks
- arrays of the integer, boolean, text and uuid types: to_json

Left to Python, because Postgres prints them differently: float4/float8 (Postgres writes 1
where Python writes 1.0 and switches to exponents from 1e15 rather than 1e16, both fixable in
SQL; but from 1e16 on it prints some whole numbers with more digits than Python's shortest
form, which SQL cannot tell apart: of 80,000 random doubles, 6,759 differed), time, timetz,
interval, inet, cidr, macaddr, money, bit strings, ranges, geometric types, pg_lsn,
tsvector, xml, enums and domains (their names do not say what they hold), and arrays of any
of those or of numeric, json, dates and times (to_json renders their elements differently)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from orchestrator.sources.tables import quote_ident

_TYPMOD = re.compile(r"\([^)]*\)")

_TEXT = "({v})::text"
_TO_JSON = "to_json({v})::text"
_QUOTED = "'\"' || ({v})::text || '\"'"
# Python's isoformat: seconds always, the fraction only when it is not zero. ".000000" can
# only be the fraction, so removing it is exact.
_STAMP = (
    "CASE WHEN isfinite({v}) THEN '\"' || replace(to_char({at}, "
    "'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '') || '{zone}\"' "
    "WHEN {v} > 'epoch' THEN '\"infinity\"' WHEN {v} IS NOT NULL THEN '\"-infinity\"' END"
)

_SCALARS: dict[str, str] = {
    "smallint": _TEXT,
    "integer": _TEXT,
    "bigint": _TEXT,
    "boolean": _TEXT,
    "text": _TO_JSON,
    "character varying": _TO_JSON,
    "character": _TO_JSON,
    "uuid": _QUOTED,
    "numeric": _QUOTED,
    "json": _TEXT,
    "jsonb": _TEXT,
    "timestamp with time zone": _STAMP.replace("{at}", "({v}) AT TIME ZONE 'UTC'").replace(
        "{zone}", "+00:00"
    ),
    "timestamp without time zone": _STAMP.replace("{at}", "{v}").replace("{zone}", ""),
    "date": (
        "CASE WHEN isfinite({v}) THEN '\"' || to_char({v}, 'YYYY-MM-DD') || '\"' "
        "WHEN {v} > 'epoch' THEN '\"infinity\"' WHEN {v} IS NOT NULL THEN '\"-infinity\"' END"
    ),
    "bytea": "'\"' || translate(encode({v}, 'base64'), E'\\n', '') || '\"'",
}

_ARRAY_ELEMENTS = frozenset(
    {"smallint", "integer", "bigint", "boolean", "text", "character varying", "character", "uuid"}
)


def value_json(expression: str, type_name: str) -> str | None:
    """SQL rendering `expression` (of Postgres type `type_name`, as format_type spells it) as
    JSON text, NULL for NULL; None when Postgres cannot render this type as encoding.py does."""
    base = _TYPMOD.sub("", type_name).strip()
    if base.endswith("[]"):
        element = base.removesuffix("[]").strip()
        if element in _ARRAY_ELEMENTS:
            return _TO_JSON.format(v=expression)
        return None
    template = _SCALARS.get(base)
    return None if template is None else template.format(v=expression)


def _literal(text: str) -> str:
    """An SQL string literal that reads the same whatever standard_conforming_strings says."""
    return "E'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def object_json(columns: Sequence[str], types: Sequence[str], alias: str) -> str | None:
    """SQL for a row of `alias` as a JSON object, columns in the given order, as
    encoding.RowEncoder.row writes it; None if a column's type is not covered."""
    values = _values(columns, types, alias)
    if values is None:
        return None
    if not values:
        return "'{}'"
    parts = [
        _literal(("{" if i == 0 else ",") + json.dumps(column, ensure_ascii=False) + ":")
        + f" || {value}"
        for i, (column, value) in enumerate(zip(columns, values, strict=True))
    ]
    return " || ".join(parts) + " || '}'"


def array_json(columns: Sequence[str], types: Sequence[str], alias: str) -> str | None:
    """SQL for the values of `columns` as a JSON array (a row's key, as RowEncoder.key writes
    it before escaping to ASCII); None if a column's type is not covered."""
    values = _values(columns, types, alias)
    if values is None:
        return None
    return "'[' || " + " || ',' || ".join(values) + " || ']'"


def _values(columns: Sequence[str], types: Sequence[str], alias: str) -> list[str] | None:
    """Each column of `alias` as JSON text, SQL null as 'null'; None if a type is not covered."""
    values: list[str] = []
    for column, type_name in zip(columns, types, strict=True):
        value = value_json(f"{alias}.{quote_ident(column)}", type_name)
        if value is None:
            return None
        values.append(f"COALESCE({value}, 'null')")
    return values
