"""What fault tests set up: a source table with awkward values, a destination that records who
wrote each row (and can be slowed down), a history of every run's state changes, and targets
and backfills created through the service (as the API would)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar
from uuid import UUID

import asyncpg

from orchestrator.context import Context
from orchestrator.domain.models import Backfill, Target
from orchestrator.domain.specs import BackfillSpec, DateRangeTargetSpec, TableTargetSpec
from tests.helpers import wait_until

if TYPE_CHECKING:
    Db: TypeAlias = asyncpg.Connection[Any]
else:
    Db = asyncpg.Connection

T = TypeVar("T")


async def until(probe: Callable[[], Awaitable[T | None]], *, within: float = 30.0, what: str) -> T:
    """tests.helpers.wait_until for a probe that answers a value or None: the value."""
    found = await wait_until(probe, within=within, what=what)
    assert found is not None
    return found


async def make_source(db: Db, rows: int, name: str = "src") -> None:
    """`rows` rows keyed 1..rows, with NULLs, quotes, unicode, arrays, jsonb and timestamps,
    so a checksum over the row text notices any value that changed on the way."""
    await db.execute(
        f"""CREATE TABLE {name} (
                id      bigint PRIMARY KEY,
                name    text NOT NULL,
                amount  numeric(12, 2),
                tags    text[],
                payload jsonb,
                seen_at timestamptz NOT NULL,
                note    text);
            INSERT INTO {name}
            SELECT g, 'row ' || g || CASE WHEN g % 7 = 0 THEN ' ''quoted'' ü€' ELSE '' END,
                   CASE WHEN g % 11 = 0 THEN NULL ELSE g * 1.25 END,
                   ARRAY['t' || g % 3, 'u' || g % 5],
                   jsonb_build_object('g', g, 'even', g % 2 = 0),
                   timestamptz '2024-01-01 00:00Z' + g * interval '1 minute',
                   CASE WHEN g % 13 = 0 THEN NULL ELSE repeat('x', (g % 40)::int) END
            FROM generate_series(1, {rows}) AS g"""
    )


async def make_dest(
    db: Db, name: str = "dst", *, like: str = "src", statement_delay: float = 0.0
) -> None:
    """An empty copy of `like` (with its key), plus `<name>_audit`: one row per row written
    (key, the writer's application_name, INSERT or UPDATE, when, its transaction). With
    `statement_delay`, every INSERT statement into it (one per delivered batch) sleeps that
    long: a way to make a real worker process's runs take a known time."""
    await db.execute(
        f"""CREATE TABLE {name} (LIKE {like} INCLUDING ALL);
            CREATE TABLE {name}_audit (
                id  bigint NOT NULL,
                app text NOT NULL,
                op  text NOT NULL,
                at  timestamptz NOT NULL DEFAULT clock_timestamp(),
                xid bigint NOT NULL DEFAULT txid_current());
            CREATE FUNCTION {name}_audit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO {name}_audit (id, app, op)
                VALUES (NEW.id, current_setting('application_name'), TG_OP);
                RETURN NULL;
            END $$;
            CREATE TRIGGER {name}_audit AFTER INSERT OR UPDATE ON {name}
                FOR EACH ROW EXECUTE FUNCTION {name}_audit();"""
    )
    if statement_delay > 0:
        await db.execute(
            f"""CREATE FUNCTION {name}_slow() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN PERFORM pg_sleep({statement_delay}); RETURN NULL; END $$;
                CREATE TRIGGER {name}_slow BEFORE INSERT ON {name}
                    FOR EACH STATEMENT EXECUTE FUNCTION {name}_slow();"""
        )


async def record_run_history(db: Db) -> None:
    """`run_history`: every change of a run's state, attempt or lease, with the database's
    clock, so a test can read the sequence of claims, retries, hand-backs and reaps."""
    await db.execute(
        """CREATE TABLE run_history (
               n           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
               run_id      bigint NOT NULL,
               backfill_id bigint NOT NULL,
               old_state   text NOT NULL,
               new_state   text NOT NULL,
               attempt     integer NOT NULL,
               worker_id   text,
               not_before  timestamptz NOT NULL,
               error       text,
               at          timestamptz NOT NULL DEFAULT clock_timestamp());
           CREATE FUNCTION run_history() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
               -- Qualified: the trigger fires in the orchestrator's sessions, whose
               -- search_path is its own schema.
               INSERT INTO public.run_history
                   (run_id, backfill_id, old_state, new_state, attempt, worker_id, not_before,
                    error)
               VALUES (NEW.id, NEW.backfill_id, OLD.state, NEW.state, NEW.attempt,
                       NEW.worker_id, NEW.not_before, NEW.error);
               RETURN NULL;
           END $$;
           CREATE TRIGGER run_history AFTER UPDATE ON transfer_runs FOR EACH ROW
               WHEN (OLD.state IS DISTINCT FROM NEW.state
                     OR OLD.lease_token IS DISTINCT FROM NEW.lease_token)
               EXECUTE FUNCTION run_history();"""
    )


async def table_target(
    ctx: Context,
    name: str = "copy",
    *,
    source: str = "src",
    dest: str = "dst",
    sink: str = "postgres",
    chunk_size: int = 500,
    max_active_runs: int = 2,
    max_attempts: int = 3,
) -> Target:
    options = {} if sink == "null" else {"table": dest}  # postgres and sinks wrapping it
    spec = TableTargetSpec.model_validate(
        {
            "name": name,
            "tables": [source],
            "sink": {"type": sink, "options": options},
            "chunk_size": chunk_size,
            "max_active_runs": max_active_runs,
            "max_attempts": max_attempts,
        }
    )
    return await ctx.usecases.targets.create(spec, team_id=1)


async def date_range_target(
    ctx: Context,
    name: str,
    handler: dict[str, Any],
    *,
    max_active_runs: int = 2,
    max_attempts: int = 3,
    interval_type: str = "day",
) -> Target:
    spec = DateRangeTargetSpec.model_validate(
        {
            "name": name,
            "handler": handler,
            "max_active_runs": max_active_runs,
            "max_attempts": max_attempts,
            "interval_type": interval_type,
        }
    )
    return await ctx.usecases.targets.create(spec, team_id=1)


async def start_backfill(
    ctx: Context, target: str, command_id: UUID | None = None, **fields: Any
) -> Backfill:
    spec = BackfillSpec.model_validate({"target": target, **fields})
    return await ctx.usecases.backfills.create(spec, team_id=1, command_id=command_id)


async def running_run(
    db: Db, backfill_id: int, min_rows: int = 1, max_rows: int | None = None
) -> asyncpg.Record | None:
    """A run of the backfill that is running and has delivered (checkpointed) at least
    `min_rows` rows, and at most `max_rows`: far enough from its end that a fault injected
    now lands in the middle of it."""
    row: asyncpg.Record | None = await db.fetchrow(
        """SELECT * FROM transfer_runs
           WHERE backfill_id = $1 AND state = 'running' AND rows_processed >= $2
             AND ($3::bigint IS NULL OR rows_processed <= $3)
           ORDER BY seq LIMIT 1""",
        backfill_id,
        min_rows,
        max_rows,
    )
    return row
