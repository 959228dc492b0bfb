"""The one checker every fault test ends with.

After a fault, it waits (with a deadline) until the backfill is terminal and none of its runs
is still pending, queued or running, then checks what really happened against what the
backfill says happened:

- delivery: every source row is in the destination exactly once, by key and by content (an
  md5 over the text of every row in key order, on both tables), nothing extra; for a
  date-range backfill, every window was executed and a handler's output has one row per
  completed window;
- nothing stuck: no run left `pending`, `queued` or `running`, no lease left on a run, no run
  past its `max_attempts`; a cancelled backfill has no run that started after the cancel;
- counters: runs_completed / runs_failed / runs_cancelled equal the runs in those states,
  runs_total the runs planned, rows_processed_count (and rows_ingested_count) the sum over
  the runs; each completed table run processed exactly the rows of its key range; for the
  `postgres` sink, the destination has rows_processed_count rows;
- nothing applied twice: one backfill for its command id, each backfill event and each
  run.failed event written to the outbox once, no command recorded twice.

It collects every problem before failing and raises one AssertionError with a readable
report of all of them and of what it found, not just the first mismatch.

    await check_table_backfill(db, backfill_id, source="src", dest="dst", within=60)
    await check_date_range_backfill(db, backfill_id, dest="daily", dest_key="day")
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

from orchestrator.sources.tables import quote_ident

if TYPE_CHECKING:
    Db: TypeAlias = asyncpg.Connection[Any]
else:
    Db = asyncpg.Connection

TERMINAL = frozenset({"completed", "failed", "cancelled"})
OPEN_RUN_STATES = ("pending", "queued", "running")
_POLL = 0.05
_SHOW_RUNS = 25


@dataclass
class Findings:
    """What the checker found; `problems` is empty when everything holds."""

    backfill_id: int
    problems: list[str] = field(default_factory=list)
    backfill: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)
    waited: float = 0.0

    def expect(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)

    @property
    def runs_by_state(self) -> dict[str, int]:
        return dict(Counter(r["state"] for r in self.runs))

    def report(self) -> str:
        b = self.backfill
        lines = [
            f"FAULT CHECK of backfill {self.backfill_id}: {len(self.problems)} problem(s) "
            f"(waited {self.waited:.1f}s for it to settle)",
            *(f"  ✗ {p}" for p in self.problems),
            "",
            "backfill: "
            + ", ".join(
                f"{k}={b.get(k)!r}"
                for k in (
                    "kind",
                    "state",
                    "planning_done",
                    "runs_total",
                    "runs_completed",
                    "runs_failed",
                    "runs_cancelled",
                    "rows_initial_count",
                    "rows_processed_count",
                    "rows_ingested_count",
                    "max_attempts",
                    "cancelled_at",
                )
            ),
            f"runs by state: {self.runs_by_state}",
        ]
        for name, value in self.sections.items():
            lines.append(f"{name}: {value}")
        shown = [r for r in self.runs if r["state"] != "completed" or r.get("_flag")]
        shown += [r for r in self.runs if r not in shown][: max(0, _SHOW_RUNS - len(shown))]
        lines.append(f"runs ({len(shown)} of {len(self.runs)}, unusual ones first):")
        for r in shown[: _SHOW_RUNS * 2]:
            span = (
                f"{r['lower_key']}..{r['upper_key']} cursor={r['cursor']}"
                if r["window_start"] is None
                else f"{r['window_start'].isoformat()}..{r['window_end'].isoformat()}"
            )
            lines.append(
                f"  run {r['id']} seq={r['seq']} {r['state']} attempt={r['attempt']} "
                f"worker={r['worker_id']} rows={r['rows_processed']}/{r['rows_ingested']} "
                f"{span} started={r['started_at']} lease={r['lease_token']} "
                f"error={(r['error'] or '')[:120]!r}"
                + (f" ← {r['_flag']}" if r.get("_flag") else "")
            )
        return "\n".join(lines)

    def raise_if_problems(self) -> Findings:
        if self.problems:
            raise AssertionError(self.report())
        return self


async def _settle(db: Db, backfill_id: int, within: float) -> tuple[bool, float]:
    """Waits until the backfill is terminal and has no open run. (A cancelled backfill is
    terminal at once, while runs that were running finish afterwards.)"""
    started = time.monotonic()
    while True:
        row = await db.fetchrow(
            f"""SELECT b.state,
                       (SELECT count(*) FROM transfer_runs r
                        WHERE r.backfill_id = b.id AND r.state IN {OPEN_RUN_STATES}) AS open
                FROM backfills b WHERE b.id = $1""",
            backfill_id,
        )
        waited = time.monotonic() - started
        if row is not None and row["state"] in TERMINAL and row["open"] == 0:
            return True, waited
        if waited > within:
            return False, waited
        await asyncio.sleep(_POLL)  # noqa: TID251 - polling with a deadline


async def _common(
    db: Db,
    backfill_id: int,
    *,
    within: float,
    state: str | Collection[str] | None,
) -> Findings:
    found = Findings(backfill_id)
    settled, found.waited = await _settle(db, backfill_id, within)
    row = await db.fetchrow("SELECT * FROM backfills WHERE id = $1", backfill_id)
    if row is None:
        found.problems.append(f"backfill {backfill_id} does not exist")
        return found
    b = found.backfill = dict(row)
    found.runs = [
        dict(r)
        for r in await db.fetch(
            "SELECT * FROM transfer_runs WHERE backfill_id = $1 ORDER BY seq", backfill_id
        )
    ]
    runs = found.runs
    found.expect(
        settled,
        f"not settled within {within:g}s: state {b['state']!r}, open runs "
        f"{sum(1 for r in runs if r['state'] in OPEN_RUN_STATES)}",
    )
    wanted = {state} if isinstance(state, str) else set(state or TERMINAL)
    found.expect(b["state"] in wanted, f"state is {b['state']!r}, expected one of {sorted(wanted)}")

    # Nothing stuck.
    for r in runs:
        flags = []
        if r["state"] in OPEN_RUN_STATES:
            flags.append(f"left {r['state']}")
        if r["lease_token"] is not None:
            flags.append("still holds a lease")
        if r["attempt"] > b["max_attempts"]:
            flags.append(f"attempt {r['attempt']} > max_attempts {b['max_attempts']}")
        if r["state"] == "completed" and (r["started_at"] is None or r["finished_at"] is None):
            flags.append("completed without started_at/finished_at")
        if r["state"] == "failed" and not r["error"]:
            flags.append("failed without an error")
        if (
            b["cancelled_at"] is not None
            and r["started_at"] is not None
            and r["started_at"] > b["cancelled_at"]
        ):
            flags.append(f"started at {r['started_at']} after the cancel at {b['cancelled_at']}")
        if flags:
            r["_flag"] = "; ".join(flags)
            found.problems.append(f"run {r['id']} (seq {r['seq']}): {r['_flag']}")

    # Counters equal what the runs say.
    by_state = Counter(r["state"] for r in runs)
    for counter, run_state in (
        ("runs_completed", "completed"),
        ("runs_failed", "failed"),
        ("runs_cancelled", "cancelled"),
    ):
        found.expect(
            b[counter] == by_state[run_state],
            f"{counter} = {b[counter]} but {by_state[run_state]} runs are {run_state}",
        )
    if b["planning_done"]:
        found.expect(
            b["runs_total"] == len(runs),
            f"runs_total = {b['runs_total']} but {len(runs)} runs were planned",
        )
    else:
        found.expect(
            b["state"] == "cancelled", "planning is not done but the backfill is not cancelled"
        )
    seqs = [r["seq"] for r in runs]
    found.expect(
        seqs == list(range(len(runs))), f"run seqs are not 0..{len(runs) - 1}: {seqs[:20]}"
    )
    for counter, column in (
        ("rows_processed_count", "rows_processed"),
        ("rows_ingested_count", "rows_ingested"),
    ):
        total = sum(r[column] for r in runs)
        found.expect(b[counter] == total, f"{counter} = {b[counter]} but the runs sum to {total}")
    if b["state"] == "completed":
        found.expect(
            by_state["completed"] == len(runs),
            f"completed, yet only {by_state['completed']} of {len(runs)} runs completed",
        )
    if b["state"] == "failed":
        found.expect(by_state["failed"] > 0, "failed, yet no run failed")

    # Nothing applied twice.
    same_command = await db.fetchval(
        "SELECT count(*) FROM backfills WHERE command_id = $1", b["command_id"]
    )
    found.expect(same_command == 1, f"{same_command} backfills for command {b['command_id']}")
    doubled = await db.fetch(
        """SELECT command_id, count(*) AS n FROM applied_commands
           WHERE backfill_id = $1 GROUP BY command_id HAVING count(*) > 1""",
        backfill_id,
    )
    found.expect(not doubled, f"commands recorded more than once: {[dict(d) for d in doubled]}")
    events = dict(
        await db.fetch(
            """SELECT routing_key, count(*) FROM outbox
               WHERE routing_key LIKE 'event.%' AND (payload->>'backfill_id')::bigint = $1
               GROUP BY routing_key""",
            backfill_id,
        )
    )
    creates = await db.fetchval(
        """SELECT count(*) FROM outbox
           WHERE routing_key = 'command.create' AND payload->>'command_id' = $1""",
        str(b["command_id"]),
    )
    found.sections["outbox events"] = events
    found.expect(creates <= 1, f"command.create written to the outbox {creates} times")
    found.expect(
        events.get("event.backfill.created", 0) == 1,
        f"event.backfill.created written {events.get('event.backfill.created', 0)} times",
    )
    for end in TERMINAL:
        n = events.get(f"event.backfill.{end}", 0)
        if end == b["state"]:
            found.expect(n == 1, f"event.backfill.{end} written {n} times, expected once")
        elif end != "failed" or b["state"] != "cancelled":  # failed, then cancelled: fine
            found.expect(n == 0, f"event.backfill.{end} written {n} times for a {b['state']} one")
    found.expect(
        events.get("event.run.failed", 0) == by_state["failed"],
        f"event.run.failed written {events.get('event.run.failed', 0)} times for "
        f"{by_state['failed']} failed runs",
    )
    return found


def _cols(names: list[str]) -> str:
    return ", ".join(quote_ident(c) for c in names)


async def _run_range_counts(
    db: Db, b: dict[str, Any], source: str, runs: list[dict[str, Any]]
) -> dict[int, int]:
    """Source rows in each completed run's key range (lower exclusive, upper inclusive)."""
    cols = _cols(b["key_columns"])
    n = len(b["key_columns"])
    types = b["key_types"]
    lower = "ROW(" + ", ".join(f"($1::text[])[{i + 1}]::{types[i]}" for i in range(n)) + ")"
    upper = "ROW(" + ", ".join(f"($2::text[])[{i + 1}]::{types[i]}" for i in range(n)) + ")"
    sql = (
        f"SELECT count(*) FROM {source} WHERE ($1::text[] IS NULL OR ROW({cols}) > {lower}) "
        f"AND ($2::text[] IS NULL OR ROW({cols}) <= {upper})"
    )
    out = {}
    for r in runs:
        if r["state"] == "completed":
            out[r["id"]] = int(await db.fetchval(sql, r["lower_key"], r["upper_key"]))
    return out


async def check_table_backfill(
    db: Db,
    backfill_id: int,
    *,
    source: str = "src",
    dest: str | None = "dst",
    within: float = 60.0,
    state: str | Collection[str] | None = "completed",
    static_source: bool = True,
) -> Findings:
    """Checks a table backfill (see the module docstring). `dest` is the `postgres` sink's
    destination table (None for another sink: no destination to compare). A cancelled or
    failed backfill needs only what it delivered to be right, not everything.
    `static_source=False` when the test changed the source during the backfill (the initial
    count may then differ)."""
    found = await _common(db, backfill_id, within=within, state=state)
    b = found.backfill
    if not b:
        return found.raise_if_problems()
    src_rows = int(await db.fetchval(f"SELECT count(*) FROM {source}"))
    found.sections["source rows"] = src_rows
    complete = b["state"] == "completed"
    processed = b["rows_processed_count"]
    if complete:
        found.expect(
            processed == src_rows,
            f"rows_processed_count = {processed} but the source has {src_rows} rows",
        )
        if static_source:
            found.expect(
                b["rows_initial_count"] == src_rows,
                f"rows_initial_count = {b['rows_initial_count']}, source has {src_rows}",
            )
    else:
        found.expect(processed <= src_rows, f"processed {processed} > source rows {src_rows}")
    expected = await _run_range_counts(db, b, source, found.runs)
    for r in found.runs:
        want = expected.get(r["id"])
        if want is not None and r["rows_processed"] != want:
            r["_flag"] = f"processed {r['rows_processed']} rows, its range has {want}"
            found.problems.append(f"run {r['id']} (seq {r['seq']}): {r['_flag']}")

    if dest is not None:
        keys = _cols(b["key_columns"])
        dst_rows = int(await db.fetchval(f"SELECT count(*) FROM {dest}"))
        distinct = int(await db.fetchval(f"SELECT count(DISTINCT ({keys})) FROM {dest}"))
        missing = await db.fetch(
            f"SELECT {keys} FROM {source} s WHERE NOT EXISTS "
            f"(SELECT 1 FROM {dest} d WHERE ({_prefixed('d', b)}) = ({_prefixed('s', b)})) "
            f"ORDER BY {keys}"
        )
        extra = await db.fetch(
            f"SELECT {keys} FROM {dest} d WHERE NOT EXISTS "
            f"(SELECT 1 FROM {source} s WHERE ({_prefixed('s', b)}) = ({_prefixed('d', b)})) "
            f"ORDER BY {keys}"
        )
        differing = await db.fetch(
            f"SELECT {keys} FROM {source} s JOIN {dest} d USING ({keys}) "
            f"WHERE s IS DISTINCT FROM d ORDER BY {keys}"
        )
        order = _cols(b["key_columns"])
        md5_src = await db.fetchval(
            f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY {order}), '')) "
            f"FROM {source} t"
        )
        md5_dst = await db.fetchval(
            f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY {order}), '')) FROM {dest} t"
        )
        found.sections["destination"] = (
            f"{dst_rows} rows ({distinct} distinct keys); md5 source {md5_src} / "
            f"destination {md5_dst}"
        )
        if missing:
            found.sections["keys missing from the destination"] = _sample(missing)
        if extra:
            found.sections["keys in the destination but not the source"] = _sample(extra)
        if differing:
            found.sections["rows whose content differs"] = _sample(differing)
        found.expect(distinct == dst_rows, f"{dst_rows - distinct} duplicate keys in {dest}")
        found.expect(not extra, f"{len(extra)} rows in {dest} that are not in {source}")
        found.expect(not differing, f"{len(differing)} rows differ between {source} and {dest}")
        found.expect(
            dst_rows == processed if complete else dst_rows >= 0,
            f"{dest} has {dst_rows} rows, rows_processed_count is {processed}",
        )
        if complete:
            found.expect(not missing, f"{len(missing)} source rows never reached {dest}")
            found.expect(md5_src == md5_dst, "the source and destination checksums differ")
            found.expect(
                b["rows_ingested_count"] == processed,
                f"rows_ingested_count {b['rows_ingested_count']} != processed {processed}",
            )
    return found.raise_if_problems()


def _prefixed(alias: str, b: dict[str, Any]) -> str:
    return ", ".join(f"{alias}.{quote_ident(c)}" for c in b["key_columns"])


def _sample(rows: list[asyncpg.Record], n: int = 10) -> str:
    shown = [tuple(r.values()) if len(r) > 1 else r[0] for r in rows[:n]]
    return f"{len(rows)}: {shown}{' …' if len(rows) > n else ''}"


async def check_date_range_backfill(
    db: Db,
    backfill_id: int,
    *,
    within: float = 60.0,
    state: str | Collection[str] | None = "completed",
    dest: str | None = None,
    dest_key: str = "window_start",
    executions: Mapping[int, int] | None = None,
    exactly_once: bool = False,
) -> Findings:
    """Checks a date-range backfill (see the module docstring). The windows must tile the
    covered range without gaps or overlaps. `dest`: a table the handler fills with one row per
    window, keyed by `dest_key` (the window start): it must hold exactly the completed
    windows. `executions`: successful handler executions per run id, as a test's handler
    counted them: every completed run executed, no other run did (and with `exactly_once`,
    each completed run exactly once)."""
    found = await _common(db, backfill_id, within=within, state=state)
    b = found.backfill
    if not b:
        return found.raise_if_problems()
    windows = sorted(found.runs, key=lambda r: r["window_start"])
    gaps = [
        (a["seq"], c["seq"])
        for a, c in itertools.pairwise(windows)
        if a["window_end"] != c["window_start"]
    ]
    found.expect(not gaps, f"windows do not tile the range between runs (seq pairs) {gaps[:5]}")
    if b["planning_done"] and windows:
        found.expect(
            windows[0]["window_start"] == b["covered_from"]
            and windows[-1]["window_end"] == b["covered_to"],
            f"windows cover {windows[0]['window_start']}..{windows[-1]['window_end']}, the "
            f"backfill {b['covered_from']}..{b['covered_to']}",
        )
    completed = {r["id"] for r in found.runs if r["state"] == "completed"}
    if dest is not None:
        rows = await db.fetch(
            f"SELECT {quote_ident(dest_key)} AS k, count(*) AS n FROM {dest} GROUP BY 1"
        )
        got = {r["k"]: r["n"] for r in rows}
        starts = {r["window_start"] for r in found.runs if r["id"] in completed}
        found.sections[f"{dest} rows"] = sum(got.values())
        found.expect(
            not (starts - set(got)),
            f"completed windows with no row in {dest}: {sorted(starts - set(got))[:5]}",
        )
        found.expect(
            not (set(got) - starts),
            f"rows in {dest} for windows that did not complete: {sorted(set(got) - starts)[:5]}",
        )
        found.expect(
            all(n == 1 for n in got.values()),
            f"windows written more than once in {dest}: {[k for k, n in got.items() if n > 1][:5]}",
        )
    if executions is not None:
        found.sections["executions per run"] = dict(executions)
        never = sorted(completed - {k for k, n in executions.items() if n > 0})
        found.expect(not never, f"completed runs the handler never finished: {never[:10]}")
        stray = sorted(k for k, n in executions.items() if n > 0 and k not in completed)
        found.expect(not stray, f"runs executed to the end but not completed: {stray[:10]}")
        if exactly_once:
            twice = sorted(k for k, n in executions.items() if n > 1)
            found.expect(not twice, f"runs executed more than once: {twice[:10]}")
    return found.raise_if_problems()
