"""Keyset planning and reading over every kind of key: the runs a table backfill is chunked
into are contiguous, partition the table exactly (every row in exactly one run's
(lower, upper]), and every row reaches the destination exactly as it is in the source.

Keys travel as Postgres text, so each case picks values whose text order differs from their
native order (9999 vs 10000, -1 vs 1, 'B' vs 'a' under an ICU collation, NaN and infinities),
and values whose text form is awkward inside a text[] (quotes, commas, braces, 'NULL', '',
whitespace, newlines)."""

from __future__ import annotations

import asyncio
import itertools
import random
from dataclasses import dataclass
from typing import Any

import pytest

from orchestrator.settings import Settings
from orchestrator.sources.tables import quote_ident
from tests.conftest import test_settings as make_settings
from tests.helpers import api, make_target, start_backfill, wait_backfill, wait_until

pytestmark = pytest.mark.integration

# Small planner batches, so every table is planned over many batches and the stored cursor
# is exercised between them, not only the boundaries inside one scan.
PLANNER_BATCH_RUNS = 4


@pytest.fixture
def settings(database: str, prefix: str) -> Settings:
    return make_settings(database, prefix, planner_batch_runs=PLANNER_BATCH_RUNS)


# ------------------------------------------------------------------------------- helpers


async def all_runs(client: Any, backfill_id: int) -> list[dict[str, Any]]:
    """Every run of a backfill over the paged API, in seq order."""
    runs: list[dict[str, Any]] = []
    after: int | None = None
    while True:
        query = f"?limit=500&after={after}" if after is not None else "?limit=500"
        page = await api(client, "GET", f"/v1/backfills/{backfill_id}/runs{query}", 200)
        runs += page["data"]
        after = page["next_after"]
        if after is None:
            return runs


def assert_contiguous(runs: list[dict[str, Any]], upper_bound: list[str] | None) -> None:
    assert [r["seq"] for r in runs] == list(range(len(runs))), "seqs are 0..n-1, none twice"
    assert runs[0]["lower_key"] is None
    for a, b in itertools.pairwise(runs):
        assert a["upper_key"] == b["lower_key"], (a, b)
        assert a["upper_key"] != a["lower_key"], a
    assert runs[-1]["upper_key"] == upper_bound


async def partition_report(db: Any, backfill_id: int, table: str = "src") -> dict[str, Any]:
    """Checks, in SQL and with the backfill's own key columns and types, how the runs divide
    the table: rows in no run or in several, and per run the rows in its (lower, upper]
    against the rows the executor says it processed."""
    meta = await db.fetchrow(
        "SELECT key_columns, key_types FROM backfills WHERE id = $1", backfill_id
    )
    cols = ", ".join(f"t.{quote_ident(c)}" for c in meta["key_columns"])

    def key(arr: str) -> str:
        return ", ".join(f"r.{arr}[{i + 1}]::{t}" for i, t in enumerate(meta["key_types"]))

    in_run = (
        f"(r.lower_key IS NULL OR ({cols}) > ({key('lower_key')})) "
        f"AND ({cols}) <= ({key('upper_key')})"
    )
    coverage = await db.fetchrow(
        f"""SELECT count(*) AS rows,
                   count(*) FILTER (WHERE n = 0) AS in_no_run,
                   count(*) FILTER (WHERE n > 1) AS in_several_runs
            FROM (SELECT (SELECT count(*) FROM transfer_runs r
                          WHERE r.backfill_id = $1 AND {in_run}) AS n
                  FROM {quote_ident(table)} t) x""",
        backfill_id,
    )
    per_run = await db.fetch(
        f"""SELECT r.seq, r.rows_processed,
                   (SELECT count(*) FROM {quote_ident(table)} t WHERE {in_run}) AS in_range
            FROM transfer_runs r WHERE r.backfill_id = $1 ORDER BY r.seq""",
        backfill_id,
    )
    return {
        "rows": coverage["rows"],
        "in_no_run": coverage["in_no_run"],
        "in_several_runs": coverage["in_several_runs"],
        "runs_miscounted": [dict(r) for r in per_run if r["rows_processed"] != r["in_range"]],
        "empty_runs": [r["seq"] for r in per_run if r["in_range"] == 0],
        "sum_in_range": sum(r["in_range"] for r in per_run),
    }


async def create_table_backfill(
    client: Any,
    name: str,
    *,
    sink: dict[str, Any],
    chunk_size: int,
    sort_column: str | None = None,
    max_active_runs: int = 8,
    table: str = "src",
) -> dict[str, Any]:
    await make_target(
        client,
        name,
        "table",
        tables=[table],
        chunk_size=chunk_size,
        sink=sink,
        max_active_runs=max_active_runs,
        sort_column=sort_column,
    )
    return await start_backfill(client, name)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class KeyCase:
    ddl: str  # creates table "src"; "$N" in `fill` becomes the row count
    fill: str
    rows: int
    chunk_size: int
    key_columns: list[str]
    sort_column: str | None = None


_AWKWARD_TEXT = """ARRAY[
    'a', 'A', 'b', 'B', 'z', 'Z', 'é', 'E', 'e', 'ß', 'ss', 'Ä', 'Å', 'æ', 'Ω', '日本', '🎉',
    '', ' ', '  lead', 'trail  ', 'NULL', 'null', '{', '}', '{}', ',', '"', '\\', 'a,b',
    'x"y', E'new\\nline', E'tab\\there', '9999', '10000', '-1', '1', '~', '_', 'ǅ']"""


def _text_case(collation: str) -> KeyCase:
    return KeyCase(
        ddl=f'CREATE TABLE src (id text COLLATE "{collation}" PRIMARY KEY, n int NOT NULL)',
        fill=f"""INSERT INTO src
            SELECT w, row_number() OVER (ORDER BY w COLLATE "C") FROM (
                SELECT unnest({_AWKWARD_TEXT}) AS w
                UNION
                SELECT (ARRAY['a', 'B', 'é', 'Ω', '日', 'z', 'Ä', ' '])[1 + g % 8]
                       || CASE WHEN g % 2 = 0 THEN upper(md5(g::text)) ELSE md5(g::text) END
                FROM generate_series(1, $N) g) d""",
        rows=300,
        chunk_size=7,
        key_columns=["id"],
    )


CASES = {
    "bigint": KeyCase(
        ddl="CREATE TABLE src (id bigint PRIMARY KEY, v text NOT NULL)",
        fill="""INSERT INTO src SELECT (g - 250) * 9999 + g % 3, 'v' || g
                FROM generate_series(1, $N) g;
                INSERT INTO src VALUES (9223372036854775807, 'max'), (-9223372036854775808, 'min'),
                                       (9999, 'a'), (10000, 'b'), (-1, 'c'), (1, 'd')
                ON CONFLICT DO NOTHING""",
        rows=300,
        chunk_size=7,
        key_columns=["id"],
    ),
    "uuid": KeyCase(
        ddl="CREATE TABLE src (id uuid PRIMARY KEY, n int NOT NULL)",
        fill="""INSERT INTO src SELECT md5(g::text)::uuid, g FROM generate_series(1, $N) g;
                INSERT INTO src VALUES ('00000000-0000-0000-0000-000000000000', 0),
                                       ('ffffffff-ffff-ffff-ffff-ffffffffffff', -1)""",
        rows=400,
        chunk_size=13,
        key_columns=["id"],
    ),
    "text-default-collation": _text_case("default"),
    "text-icu-collation": _text_case("en-x-icu"),
    "timestamptz": KeyCase(
        ddl="CREATE TABLE src (ts timestamptz PRIMARY KEY, n int NOT NULL)",
        fill="""INSERT INTO src
                SELECT '2020-03-08 01:59:59.999999-05'::timestamptz
                       + g * interval '37 minutes 0.000123 seconds', g
                FROM generate_series(1, $N) g;
                INSERT INTO src VALUES ('infinity', -1), ('-infinity', -2),
                                       ('1900-01-01 00:00:00+00', -3),
                                       ('2262-04-11 23:47:16.854775+00', -4),
                                       ('2024-10-27 01:30:00+01', -5),
                                       ('2024-10-27 01:30:00+02', -6)""",
        rows=300,
        chunk_size=7,
        key_columns=["ts"],
    ),
    "numeric": KeyCase(
        ddl="CREATE TABLE src (id numeric PRIMARY KEY, n int NOT NULL)",
        fill="""INSERT INTO src SELECT round((g - 300) / 7.0, 1 + g % 12), g
                FROM generate_series(1, $N) g ON CONFLICT DO NOTHING;
                INSERT INTO src VALUES ('NaN', -1), ('Infinity', -2), ('-Infinity', -3),
                                       (1e30, -4), (-1e30, -5), (0.000000000000000000001, -6),
                                       (1.50, -7), (9999, -8), (10000, -9)
                ON CONFLICT DO NOTHING""",
        rows=300,
        chunk_size=7,
        key_columns=["id"],
    ),
    "composite-int-text": KeyCase(
        ddl="""CREATE TABLE src (a int, b text, n int NOT NULL, PRIMARY KEY (a, b))""",
        fill="""INSERT INTO src
                SELECT g % 5 - 2, (ARRAY['x', 'X', 'é', 'ü', 'b,c', '{}'])[1 + g % 6] || (g / 5),
                       g
                FROM generate_series(1, $N) g""",
        rows=350,
        chunk_size=7,
        key_columns=["a", "b"],
    ),
    "duplicate-sort-values-chunk-7": KeyCase(
        ddl="""CREATE TABLE src (id int PRIMARY KEY, updated_at timestamptz NOT NULL, v text)""",
        fill="""INSERT INTO src
                SELECT g, '2024-01-01'::timestamptz + (g % 3) * interval '1 day', 'v' || g
                FROM generate_series(1, $N) g""",
        rows=600,
        chunk_size=7,
        key_columns=["updated_at", "id"],
        sort_column="updated_at",
    ),
    "duplicate-sort-values-chunk-50": KeyCase(
        ddl="""CREATE TABLE src (id int PRIMARY KEY, updated_at timestamptz NOT NULL, v text)""",
        fill="""INSERT INTO src
                SELECT g, '2024-01-01'::timestamptz + (abs(hashint4(g)) % 3) * interval '1 day',
                       'v' || g
                FROM generate_series(1, $N) g""",
        rows=1000,
        chunk_size=50,
        key_columns=["updated_at", "id"],
        sort_column="updated_at",
    ),
    "unique-not-null-index": KeyCase(
        # No primary key; a nullable unique column that must not be chosen as the key.
        ddl="""CREATE TABLE src (alt int UNIQUE, code text NOT NULL, n int NOT NULL);
               CREATE UNIQUE INDEX src_code ON src (code)""",
        fill="""INSERT INTO src
                SELECT CASE WHEN g % 2 = 0 THEN g END, 'c-' || md5(g::text), g
                FROM generate_series(1, $N) g""",
        rows=300,
        chunk_size=7,
        key_columns=["code"],
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
async def test_every_key_kind_is_chunked_contiguously_and_copied_row_for_row(
    client: Any, db: Any, case: KeyCase
) -> None:
    await db.execute(case.ddl)
    await db.execute(case.fill.replace("$N", str(case.rows)))
    await db.execute("CREATE TABLE src_copy (LIKE src INCLUDING ALL)")
    total = await db.fetchval("SELECT count(*) FROM src")
    assert total >= case.rows * 0.9  # the case made the table it meant to

    created = await create_table_backfill(
        client,
        "keys",
        chunk_size=case.chunk_size,
        sort_column=case.sort_column,
        sink={"type": "postgres", "options": {"table": "src_copy"}},
    )
    done = await wait_backfill(client, created["id"], {"completed", "failed", "cancelled"})
    assert done["state"] == "completed", done
    assert done["rows_initial_count"] == total
    assert done["rows_processed_count"] == total
    assert done["rows_ingested_count"] == total
    assert await db.fetchval("SELECT count(*) FROM src_copy") == total

    key_columns, upper_bound = await db.fetchrow(
        "SELECT key_columns, upper_bound FROM backfills WHERE id = $1", created["id"]
    )
    assert key_columns == case.key_columns

    using = ", ".join(quote_ident(c) for c in case.key_columns)
    different = await db.fetchval(
        f"SELECT count(*) FROM src s FULL JOIN src_copy c USING ({using}) "
        "WHERE s IS DISTINCT FROM c"
    )
    assert different == 0

    runs = await all_runs(client, created["id"])
    assert len(runs) == done["runs_total"] == done["runs_created"] == done["runs_completed"]
    assert len(runs) >= total // case.chunk_size
    assert {r["state"] for r in runs} == {"completed"}
    assert_contiguous(runs, upper_bound)
    assert sum(r["rows_processed"] for r in runs) == total
    # Every run but the tail holds exactly chunk_size rows.
    assert all(r["rows_processed"] == case.chunk_size for r in runs[:-1])

    report = await partition_report(db, created["id"])
    assert report["rows"] == report["sum_in_range"] == total, report
    assert report["in_no_run"] == report["in_several_runs"] == 0, report
    assert report["runs_miscounted"] == [], report
    assert report["empty_runs"] == [], report


# ------------------------------------------------------------------------ property style


async def _random_partition_table(db: Any, table: str, rng: random.Random, n: int) -> None:
    """`grp` (the sort column) has few distinct values, so most chunk boundaries fall inside
    a run of equal sort values; ids are a random sample, so id order is not grp order."""
    dups = rng.randint(1, 9)
    await db.execute(
        f"CREATE TABLE {table} (id bigint PRIMARY KEY, grp int NOT NULL, label text NOT NULL)"
    )
    ids = rng.sample(range(-(10**12), 10**12), n)
    await db.copy_records_to_table(
        table,
        records=[(i, rng.randrange(dups), f"l{i}") for i in ids],
        columns=["id", "grp", "label"],
    )


def _property_cases() -> list[tuple[str, int, int]]:
    """(name, rows, chunk_size): three seeded random shapes, then the planner's edges."""
    cases = []
    for seed in (7, 1234, 987654):
        rng = random.Random(seed)
        n = rng.randint(50, 1200)
        cases.append((f"seed_{seed}", n, rng.randint(max(1, n // 60), max(2, n // 4))))
    return [
        *cases,
        ("one_row", 1, 7),  # a single tail run
        ("one_chunk", 7, 7),  # exactly one chunk, no tail
        ("one_batch", 7 * PLANNER_BATCH_RUNS, 7),  # one full planner batch, then an empty one
        ("two_batches_and_a_row", 7 * PLANNER_BATCH_RUNS * 2 + 1, 7),
    ]


async def test_runs_partition_random_tables_exactly(client: Any, db: Any) -> None:
    """Property style, without hypothesis: for seeded random row counts, chunk sizes and
    duplicate densities (and the batch edges), the runs partition the table exactly. The
    backfills run side by side on one worker."""
    cases = _property_cases()
    created: dict[str, dict[str, Any]] = {}
    for name, rows, chunk in cases:
        await _random_partition_table(db, name, random.Random(name), rows)
        created[name] = await create_table_backfill(
            client, name, table=name, chunk_size=chunk, sort_column="grp", sink={"type": "null"}
        )
    finals = await asyncio.gather(
        *(
            wait_backfill(client, b["id"], {"completed", "failed", "cancelled"})
            for b in created.values()
        )
    )
    for (name, rows, chunk), done in zip(cases, finals, strict=True):
        context = {"case": name, "rows": rows, "chunk": chunk}
        assert done["state"] == "completed", (context, done)
        assert done["rows_processed_count"] == done["rows_initial_count"] == rows, context
        assert done["runs_total"] == -(-rows // chunk), context  # ceil: full chunks + tail
        upper_bound = await db.fetchval(
            "SELECT upper_bound FROM backfills WHERE id = $1", done["id"]
        )
        assert_contiguous(await all_runs(client, done["id"]), upper_bound)
        report = await partition_report(db, done["id"], table=name)
        assert report["sum_in_range"] == report["rows"] == rows, (context, report)
        assert report["in_no_run"] == report["in_several_runs"] == 0, (context, report)
        assert report["runs_miscounted"] == [], (context, report)
        assert report["empty_runs"] == [], (context, report)


# --------------------------------------------------------------------------- upper bound


async def test_rows_beyond_the_upper_bound_taken_at_start_are_not_delivered(
    client: Any, db: Any
) -> None:
    """The backfill's job is the table as it was when planning began: rows inserted later with
    keys beyond the upper bound belong to whatever streams new rows, not to the backfill."""
    await db.execute("CREATE TABLE src (id bigint PRIMARY KEY, v text NOT NULL)")
    await db.execute("INSERT INTO src SELECT g, 'old' FROM generate_series(1, 350) g")
    await db.execute("CREATE TABLE src_copy (LIKE src INCLUDING ALL)")
    created = await create_table_backfill(
        client,
        "bounded",
        chunk_size=7,
        max_active_runs=2,
        sink={"type": "postgres", "options": {"table": "src_copy"}},
    )

    async def upper_bound() -> list[str] | None:
        return await db.fetchval(  # type: ignore[no-any-return]
            "SELECT upper_bound FROM backfills WHERE id = $1", created["id"]
        )

    assert await wait_until(upper_bound, what="the upper bound to be taken") == ["350"]
    # Held while the late rows arrive, so they land while planning and copying go on.
    paused = await api(client, "POST", f"/v1/backfills/{created['id']}/pause", 200)
    assert paused["runs_completed"] < 50  # most of the 50 runs are still ahead
    await db.execute("INSERT INTO src SELECT g, 'late' FROM generate_series(351, 450) g")
    await api(client, "POST", f"/v1/backfills/{created['id']}/resume", 200)

    done = await wait_backfill(client, created["id"], {"completed", "failed", "cancelled"})
    assert done["state"] == "completed", done
    assert done["rows_initial_count"] == 350
    assert done["rows_processed_count"] == 350
    assert await db.fetchval("SELECT count(*) FROM src") == 450
    assert await db.fetchval("SELECT count(*) FROM src_copy") == 350
    assert await db.fetchval("SELECT count(*) FROM src_copy WHERE id > 350 OR v = 'late'") == 0
    runs = await all_runs(client, created["id"])
    assert_contiguous(runs, ["350"])
    assert len(runs) == 50
