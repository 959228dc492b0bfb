"""Row encoding without a database: each kind of value asyncpg hands over becomes the JSON
that docs/destinations.md promises. The round trip through Postgres itself is in
tests/integration/test_row_encoding.py."""

from __future__ import annotations

import ipaddress
import json
import math
import struct
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest
from asyncpg import BitString, Box, Circle, Path, Point, Polygon, Range
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.sinks.encoding import (
    RowEncoder,
    ascii_json,
    encode_value,
    encoder_for,
    idempotency_key,
)
from orchestrator.sources.intervals import PgInterval, interval_iso


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (-(2**63), str(-(2**63))),
        (1.5, "1.5"),
        (1e300, "1e+300"),
        (math.nan, '"NaN"'),
        (math.inf, '"Infinity"'),
        (-math.inf, '"-Infinity"'),
        (Decimal("12.50"), '"12.50"'),
        (Decimal("1E-7"), '"0.0000001"'),
        (Decimal("1E+3"), '"1000"'),
        (Decimal("12345678901234567890.123456789"), '"12345678901234567890.123456789"'),
        (Decimal("NaN"), '"NaN"'),
        (Decimal("-Infinity"), '"-Infinity"'),
        ('tab\there "quoted" é', '"tab\\there \\"quoted\\" é"'),
        (datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC), '"2024-01-02T03:04:05.000006+00:00"'),
        (datetime(2024, 1, 2, 3, 4, 5), '"2024-01-02T03:04:05"'),
        (datetime.max, '"infinity"'),
        (datetime.min, '"-infinity"'),
        (date(2024, 2, 29), '"2024-02-29"'),
        (date.max, '"infinity"'),
        (time(12, 30, 0, 500), '"12:30:00.000500"'),
        (time(12, 0, tzinfo=timezone(timedelta(hours=2))), '"12:00:00+02:00"'),
        (UUID("12345678-1234-5678-1234-567812345678"), '"12345678-1234-5678-1234-567812345678"'),
        (b"\x00\xffhi", '"AP9oaQ=="'),
        (ipaddress.ip_interface("192.168.1.5/24"), '"192.168.1.5/24"'),
        (ipaddress.ip_address("10.0.0.1"), '"10.0.0.1"'),
        (ipaddress.ip_network("2001:db8::/32"), '"2001:db8::/32"'),
        (BitString("1010"), '"1010"'),
        (PgInterval(14, 3, 14_706_700_000), '"P1Y2M3DT4H5M6.7S"'),
        (timedelta(days=-1, seconds=3600), '"P-1DT1H"'),
        ([1, None, 3], "[1,null,3]"),
        ([[1, 2], [3, 4]], "[[1,2],[3,4]]"),
        (Point(1, 2.5), '"(1.0,2.5)"'),
        (Circle(Point(0, 0), 2), '"<(0.0,0.0),2.0>"'),
        (Box(Point(2, 2), Point(0, 0)), '"(2.0,2.0),(0.0,0.0)"'),
        (Polygon(Point(0, 0), Point(1, 0), Point(1, 1)), '"((0.0,0.0),(1.0,0.0),(1.0,1.0))"'),
        (Path(Point(0, 0), Point(1, 1), is_closed=False), '"[(0.0,0.0),(1.0,1.0)]"'),
        (Range(1, 10), '"[1,10)"'),
        (Range(None, 5, upper_inc=True), '"(,5]"'),
        (Range(empty=True), '"empty"'),
    ],
)
def test_values_by_python_type(value: object, expected: str) -> None:
    assert encode_value(value) == expected
    json.loads(expected)  # and it is JSON


@pytest.mark.parametrize(
    ("interval", "text"),
    [
        (PgInterval(0, 0, 0), "PT0S"),
        (PgInterval(-10, -3, 14_706_700_000), "P-10M-3DT4H5M6.7S"),
        (PgInterval(0, 0, -3_600_000_001), "PT-1H-0.000001S"),
        (PgInterval(-12, 0, 0), "P-1Y"),
        (PgInterval(0, 0, 59_000_000), "PT59S"),
    ],
)
def test_intervals_keep_months_days_and_time_apart(interval: PgInterval, text: str) -> None:
    assert interval_iso(interval) == text


def test_json_columns_are_spliced_as_json_values_with_their_type() -> None:
    raw = '{"big": 12345678901234567890.5, "list": [1, "x"]}'
    assert encoder_for("jsonb")(raw) == raw
    assert encoder_for("jsonb[]")([raw, None]) == f"[{raw},null]"
    assert encoder_for(None)(raw) == json.dumps(raw, ensure_ascii=False)  # untyped: a string


def test_arrays_use_the_element_type() -> None:
    assert encoder_for("numeric[]")([[Decimal("1.10")], [None]]) == '[["1.10"],[null]]'
    assert encoder_for("interval[]")([PgInterval(1, 0, 0)]) == '["P1M"]'
    assert encoder_for("point[]")([Point(1, 2)]) == '["(1.0,2.0)"]'


def test_float4_prints_the_shortest_text_of_the_single_precision_value() -> None:
    widened = struct.unpack("<f", struct.pack("<f", 1.1))[0]
    assert widened != 1.1
    assert encoder_for("float4")(widened) == "1.1"
    assert encoder_for("float4")(3.0) == "3.0"
    assert encoder_for("float4")(math.inf) == '"Infinity"'


def test_ranges_render_bounds_by_element_type() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    end = datetime(2024, 2, 1, tzinfo=UTC)
    assert (
        encoder_for("tstzrange")(Range(start, end))
        == '"[2024-01-01T00:00:00+00:00,2024-02-01T00:00:00+00:00)"'
    )
    assert encoder_for("numrange")(Range(Decimal("1.5"), None)) == '"[1.5,)"'
    assert encoder_for("tsrange")(Range(datetime(2024, 1, 1), None)) == '"[2024-01-01T00:00:00,)"'
    assert encode_value(Range("a b", 'c"d')) == json.dumps('["a b","c\\"d")')


def test_pg_lsn_reads_as_postgres_prints_it() -> None:
    assert encoder_for("pg_lsn")(0x16B6C50) == '"0/16B6C50"'


def test_a_row_is_a_json_object_in_column_order_and_its_key_is_ascii() -> None:
    encoder = RowEncoder(["id", "name", "doc"], ["text", "text", "jsonb"], ["id"])
    row = ("ключ", "naïve", '{"a": 1}')
    assert encoder.row(row) == '{"id":"ключ","name":"naïve","doc":{"a": 1}}'
    key = encoder.key(row)
    assert key.isascii()
    assert json.loads(key) == ["ключ"]
    assert encoder.key_text(row) == ["ключ"]


def test_a_row_encoder_refuses_a_key_outside_the_columns() -> None:
    with pytest.raises(ValueError, match="key column"):
        RowEncoder(["a"], [], ["id"])


def test_ascii_json_escapes_beyond_the_basic_plane_as_surrogate_pairs() -> None:
    text = json.dumps(["é😀"], ensure_ascii=False)
    assert ascii_json(text) == json.dumps(["é😀"], ensure_ascii=True)


def test_idempotency_keys_name_the_backfill_table_and_keys() -> None:
    assert idempotency_key(7, "public.orders", "[1]") == "7:public.orders:[1]"
    assert idempotency_key(7, "public.orders", "[1]", "[1]") == "7:public.orders:[1]"
    assert idempotency_key(7, "public.orders", "[1]", "[500]") == "7:public.orders:[1]..[500]"
    long = idempotency_key(7, "public.orders", json.dumps(["x" * 300]))
    assert long.startswith("7:sha256:")
    assert len(long) < 100
    assert long == idempotency_key(7, "public.orders", json.dumps(["x" * 300]))


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimals_survive_exactly_with_their_scale(value: Decimal) -> None:
    text = json.loads(encode_value(value))
    assert "E" not in text.upper()
    back = Decimal(text)
    assert back == value
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent <= 0:  # the scale, trailing zeros included ("12.50" stays 12.50)
        assert back.as_tuple().exponent == exponent


@given(st.floats(allow_nan=False))
def test_floats_survive_exactly(value: float) -> None:
    decoded = json.loads(encode_value(value))
    assert (float(decoded) if isinstance(decoded, str) else decoded) == value
