"""Rows as JSON, without losing anything on the way.

Values come as asyncpg decodes them. Each is written straight to JSON text, so a value that
JSON cannot hold natively keeps its exact form as a string instead of passing through a
float or a default `str()`:

- numeric: a string of the exact decimal ("12.50", trailing zeros kept; "NaN", "Infinity")
- float4/float8: a number (the shortest text that reads back as the same value); NaN and
  ±Infinity, which JSON lacks, as the strings Postgres prints
- timestamptz, timestamp, date, time, timetz: ISO 8601 strings ("2024-01-01T00:00:00+00:00");
  ±infinity as "infinity" / "-infinity"
- interval: an ISO 8601 duration in Postgres's iso_8601 style ("P1Y2M3DT4H5M6.7S")
- json/jsonb: the JSON value itself, spliced from Postgres's text, so big or precise numbers
  inside stay exact (needs the column's type; without it, the JSON text as a string)
- bytea: base64; uuid, inet, cidr, macaddr, enums, money, text: strings
- arrays: JSON arrays of their elements, encoded by the element type
- ranges: Postgres's range text ("[1,10)"); geometric types: Postgres's text ("(1,2)")
- NULL: null

`column_types` are Postgres type names as asyncpg reports them ("int4", "numeric[]",
"jsonb"). A column without a type is encoded from its Python value alone."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import math
import struct
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import BitString, Box, Circle, Line, LineSegment, Path, Point, Polygon, Range

from orchestrator.sources.intervals import PgInterval, interval_iso

Encode = Callable[[Any], str]

_dumps = json.JSONEncoder(ensure_ascii=False).encode

_RANGE_ELEMENTS = {
    "int4range": "int4",
    "int8range": "int8",
    "numrange": "numeric",
    "tsrange": "timestamp",
    "tstzrange": "timestamptz",
    "daterange": "date",
}


# ---------------------------------------------------------------- scalars


def _string(value: Any) -> str:
    return _dumps(str(value))


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _int(value: int) -> str:
    return str(value)


def _float(value: float) -> str:
    if math.isfinite(value):
        return repr(value)
    return '"NaN"' if math.isnan(value) else ('"Infinity"' if value > 0 else '"-Infinity"')


def _float4(value: float) -> str:
    if not math.isfinite(value):
        return _float(value)
    # asyncpg widens real to double (1.1 arrives as 1.100000023841858); print the shortest
    # text that reads back as the same 32-bit value, as Postgres does.
    packed = struct.pack("<f", value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if struct.pack("<f", float(text)) == packed:
            return text if any(c in text for c in ".en") else text + ".0"
    return repr(value)


def _decimal(value: Decimal) -> str:
    # 'f' never switches to exponent notation, and keeps the scale ("1.2500").
    return '"' + format(value, "f") + '"'


def _datetime(value: datetime) -> str:
    if 1 < value.year < 9999:  # neither infinity: the common case, without replace()
        return '"' + value.isoformat() + '"'
    if value.replace(tzinfo=None) == datetime.max:
        return '"infinity"'
    if value.replace(tzinfo=None) == datetime.min:
        return '"-infinity"'
    return '"' + value.isoformat() + '"'


def _date(value: date) -> str:
    if value == date.max:
        return '"infinity"'
    if value == date.min:
        return '"-infinity"'
    return '"' + value.isoformat() + '"'


def _time(value: time) -> str:
    return '"' + value.isoformat() + '"'


def _interval(value: PgInterval) -> str:
    return '"' + interval_iso(value) + '"'


def _timedelta(value: timedelta) -> str:
    # Only from a connection without use_exact_intervals: months were already folded into
    # days by the driver; what is left is written exactly.
    micros = value.seconds * 1_000_000 + value.microseconds
    return _interval(PgInterval(0, value.days, micros))


def _bytes(value: bytes | bytearray | memoryview) -> str:
    return '"' + base64.b64encode(bytes(value)).decode("ascii") + '"'


def _bits(value: BitString) -> str:
    return '"' + value.as_string().replace(" ", "") + '"'


def _num(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else _float(value).strip('"')


def _pt(p: Any) -> str:
    return f"({_num(p[0])},{_num(p[1])})"


def _geometry(value: Any) -> str:
    if isinstance(value, Point):
        text = _pt(value)
    elif isinstance(value, Circle):
        text = f"<{_pt(value.center)},{_num(value.radius)}>"
    elif isinstance(value, Line):
        text = "{" + ",".join(_num(v) for v in value) + "}"
    elif isinstance(value, LineSegment):
        text = f"[{_pt(value.p1)},{_pt(value.p2)}]"
    elif isinstance(value, Box):
        text = f"{_pt(value.high)},{_pt(value.low)}"
    elif isinstance(value, Polygon):
        text = "(" + ",".join(_pt(p) for p in value.points) + ")"
    else:
        assert isinstance(value, Path)
        inner = ",".join(_pt(p) for p in value.points)
        text = f"({inner})" if value.is_closed else f"[{inner}]"
    return _dumps(text)


_BY_PYTHON_TYPE: dict[type, Encode] = {
    str: _dumps,
    bool: _bool,
    int: _int,
    float: _float,
    Decimal: _decimal,
    datetime: _datetime,
    date: _date,
    time: _time,
    PgInterval: _interval,
    timedelta: _timedelta,
    UUID: _string,
    bytes: _bytes,
    bytearray: _bytes,
    memoryview: _bytes,
    BitString: _bits,
    ipaddress.IPv4Address: _string,
    ipaddress.IPv6Address: _string,
    ipaddress.IPv4Interface: _string,
    ipaddress.IPv6Interface: _string,
    ipaddress.IPv4Network: _string,
    ipaddress.IPv6Network: _string,
    Point: _geometry,
    Box: _geometry,
    Line: _geometry,
    LineSegment: _geometry,
    Path: _geometry,
    Polygon: _geometry,
    Circle: _geometry,
}


def encode_value(value: Any) -> str:
    """JSON text for a value, chosen by its Python type alone."""
    if value is None:
        return "null"
    encode = _BY_PYTHON_TYPE.get(type(value))
    if encode is not None:
        return encode(value)
    if isinstance(value, Range):
        return _range(value, encode_value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(encode_value(v) for v in value) + "]"
    if isinstance(value, (dict, asyncpg.Record)):  # hstore with a codec; composite types
        return (
            "{" + ",".join(_dumps(str(k)) + ":" + encode_value(v) for k, v in value.items()) + "}"
        )
    for kind, encode in _BY_PYTHON_TYPE.items():
        if isinstance(value, kind):  # subclasses: enum.StrEnum, IntEnum, …
            return encode(value)
    return _string(value)


# ---------------------------------------------------------------- by column type


def _nullable(encode: Encode) -> Encode:
    return lambda v: "null" if v is None else encode(v)


def _raw_json(value: Any) -> str:
    # Postgres's own json/jsonb text is valid JSON; splicing it keeps numbers exact.
    return value if isinstance(value, str) else encode_value(value)


_RANGE_SPECIAL = frozenset(' \t\n\r",\\()[]')


def _range_bound(text: str) -> str:
    """A bound as Postgres's range text has it: quoted only when it must be."""
    inner: str = json.loads(text) if text.startswith('"') else text
    if inner and not _RANGE_SPECIAL.intersection(inner):
        return inner
    return '"' + inner.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _range(value: Range[Any], element: Encode) -> str:
    if value.isempty:
        return '"empty"'
    lower = "" if value.lower_inf else _range_bound(element(value.lower))
    upper = "" if value.upper_inf else _range_bound(element(value.upper))
    text = (
        ("[" if value.lower_inc else "(") + lower + "," + upper + ("]" if value.upper_inc else ")")
    )
    return _dumps(text)


def _lsn(value: Any) -> str:
    if isinstance(value, int):
        return f'"{value >> 32:X}/{value & 0xFFFFFFFF:X}"'
    return encode_value(value)


def encoder_for(type_name: str | None) -> Encode:
    """The encoder of one column (or array element) given its Postgres type name."""
    if not type_name:
        return encode_value
    if type_name.endswith("[]"):
        element = encoder_for(type_name[:-2])

        def array(value: Any) -> str:
            # Arrays arrive as lists (nested for more dimensions); a tuple here is an element
            # (a point, an interval), not a dimension.
            if type(value) is list:
                return "[" + ",".join(array(v) for v in value) + "]"
            return element(value)

        return _nullable(array)
    if type_name in ("json", "jsonb"):
        return _nullable(_raw_json)
    if type_name == "float4":
        return _nullable(lambda v: _float4(v) if isinstance(v, float) else encode_value(v))
    if type_name == "pg_lsn":
        return _nullable(_lsn)
    if type_name in _RANGE_ELEMENTS:
        bound = encoder_for(_RANGE_ELEMENTS[type_name])
        return _nullable(lambda v: _range(v, bound) if isinstance(v, Range) else encode_value(v))
    return encode_value


def _row_function(fields: list[tuple[str, Encode]]) -> Callable[[Sequence[Any]], str]:
    """One row as a JSON object, columns in table order: a function made for this shape, one
    concatenation with no loop, since it runs for every row. The generated source holds only
    indices; names and encoders are bound from `fields`, never pasted into code."""
    width = len(fields)
    commas = " + ',' + ".join(f"n{i} + e{i}(v[{i}])" for i in range(width)) or "''"
    params = ", ".join(f"n{i}=n{i}, e{i}=e{i}" for i in range(width))
    namespace: dict[str, Any] = {}
    for i, (name, encode) in enumerate(fields):
        namespace[f"n{i}"], namespace[f"e{i}"] = name, encode
    source = (
        f"def row(v{', ' + params if params else ''}):\n"
        f"    if len(v) != {width}:\n"
        f"        raise ValueError(f'{{len(v)}} values for {width} columns')\n"
        f"    return '{{' + {commas} + '}}'\n"
    )
    exec(source, namespace)
    function: Callable[[Sequence[Any]], str] = namespace["row"]
    return function


class RowEncoder:
    """Encodes the rows of one batch shape; built once per (columns, types) and reused."""

    def __init__(
        self, columns: Sequence[str], column_types: Sequence[str], key_columns: Sequence[str]
    ) -> None:
        types: list[str | None] = list(column_types) or [None] * len(columns)
        if len(types) != len(columns):
            raise ValueError(f"{len(columns)} columns but {len(types)} column types")
        missing = [k for k in key_columns if k not in columns]
        if missing:
            raise ValueError(f"key column(s) {', '.join(missing)} not among the row's columns")
        self._fields = [
            (_dumps(c) + ":", encoder_for(t)) for c, t in zip(columns, types, strict=True)
        ]
        self._key_at = [list(columns).index(k) for k in key_columns]
        self.row = _row_function(self._fields)

    def key(self, values: Sequence[Any]) -> str:
        """The row's key as a JSON array in ASCII (it also goes into headers)."""
        parts = [self._fields[i][1](values[i]) for i in self._key_at]
        return ascii_json("[" + ",".join(parts) + "]")

    def key_text(self, values: Sequence[Any]) -> list[str]:
        """The key's values as plain text (for routing keys): strings unquoted."""
        out: list[str] = []
        for i in self._key_at:
            encoded = self._fields[i][1](values[i])
            out.append(json.loads(encoded) if encoded.startswith('"') else encoded)
        return out


def ascii_json(text: str) -> str:
    """The same JSON with every non-ASCII character escaped (\\uXXXX, surrogate pairs
    beyond the BMP), so it fits an HTTP header or an AMQP short string."""
    if text.isascii():
        return text
    out: list[str] = []
    for char in text:
        code = ord(char)
        if code < 0x80:
            out.append(char)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    return "".join(out)


# An AMQP message id is at most 255 bytes; HTTP headers prefer short ASCII too.
_MAX_KEY_CHARS = 200


def idempotency_key(
    backfill_id: int, table: str, first_key: str, last_key: str | None = None
) -> str:
    """The same rows of the same backfill always get the same key, so a receiver can drop
    a repeat: "<backfill>:<schema.table>:<key>" for a row, "…:<first key>..<last key>" for a
    batch; keys too long for a header become their SHA-256."""
    span = first_key if last_key is None or last_key == first_key else f"{first_key}..{last_key}"
    text = f"{backfill_id}:{table}:{span}"
    if len(text) <= _MAX_KEY_CHARS and text.isascii():
        return text
    digest = hashlib.sha256(f"{table}:{span}".encode()).hexdigest()
    return f"{backfill_id}:sha256:{digest}"
