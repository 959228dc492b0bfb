"""Intervals as Postgres stores them, for the source pools: asyncpg folds months into 30
days by default, which would turn a year into 360 days on its way to a sink."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NamedTuple

import asyncpg


class PgInterval(NamedTuple):
    """An interval as Postgres stores it. asyncpg's default decoding folds months into 30
    days (a year becomes 360 days); decoding to this keeps the three fields apart."""

    months: int
    days: int
    microseconds: int

    def __str__(self) -> str:
        return interval_iso(self)


async def use_exact_intervals(conn: asyncpg.Connection[Any]) -> None:
    """Makes `conn` decode intervals as PgInterval (binary, so COPY still works). Meant as a
    pool's `init` for the source pools."""

    def encode(value: Any) -> tuple[int, int, int]:
        if isinstance(value, timedelta):
            return (0, value.days, value.seconds * 1_000_000 + value.microseconds)
        months, days, micros = value
        return (int(months), int(days), int(micros))

    await conn.set_type_codec(
        "interval",
        schema="pg_catalog",
        encoder=encode,
        decoder=lambda t: PgInterval(*t),
        format="tuple",
    )


def _seconds(micros: int) -> str:
    whole, frac = divmod(micros, 1_000_000)
    return f"{whole}.{frac:06d}".rstrip("0").rstrip(".") if frac else str(whole)


def interval_iso(value: PgInterval) -> str:
    """Postgres's iso_8601 interval style, which Postgres reads back exactly: each field
    carries its own sign ("P-1Y-2M3DT-4H")."""
    years = int(value.months / 12)  # toward zero, as Postgres splits them
    months = value.months - 12 * years
    out = "P"
    for amount, unit in ((years, "Y"), (months, "M"), (value.days, "D")):
        if amount:
            out += f"{amount}{unit}"
    micros = value.microseconds
    if micros:
        sign = "-" if micros < 0 else ""
        hours, rest = divmod(abs(micros), 3_600_000_000)
        minutes, rest = divmod(rest, 60_000_000)
        out += "T"
        if hours:
            out += f"{sign}{hours}H"
        if minutes:
            out += f"{sign}{minutes}M"
        if rest:
            out += f"{sign}{_seconds(rest)}S"
    return out if out != "P" else "PT0S"
