"""`backfill demo`: a guided first run against a running service.

Makes a sample table of a few hundred thousand rows in a source (`demo` by default), a table
target copying it and a date-range target (sql handler) totalling it per window, starts one
backfill of each over the REST API, watches both to their end and says where to look next.
It runs on the service's host: the sample tables are made with the operator's database
access, everything else goes through the API like any client."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
import typer

from orchestrator.cli import output
from orchestrator.cli.client import ApiClient, open_client
from orchestrator.cli.config import load_settings
from orchestrator.cli.errors import CliError, UsageError
from orchestrator.cli.options import TokenOpt, UrlOpt, run
from orchestrator.cli.progress import summary
from orchestrator.cli.watch import exit_code, watch_backfills
from orchestrator.settings import Settings

EVENTS = "public.demo_events"
COPY = "public.demo_events_copy"
TOTALS = "public.demo_event_totals"
TABLE_TARGET = "demo-events-copy"
WINDOW_TARGET = "demo-event-totals"
MONTH_START, MONTH_END = "2024-01-01", "2024-01-31"  # a date end includes its day

# One statement per window: $1 and $2 are the window's bounds.
TOTALS_STATEMENT = f"""INSERT INTO {TOTALS} (window_start, events, amount)
SELECT $1, count(*), coalesce(sum(amount), 0) FROM {EVENTS}
WHERE created_at >= $1 AND created_at < $2
ON CONFLICT (window_start) DO UPDATE SET events = EXCLUDED.events, amount = EXCLUDED.amount"""


async def tables_dsn(settings: Settings, source: str) -> str:
    """Where to make the sample tables, with the operator's rights: the orchestrator's own
    database for the `demo` source a start set up there (its role may not create tables),
    the configured DSN for any other source."""
    from orchestrator.cli.server import with_demo_source
    from orchestrator.sources.demo import DEMO_SOURCE

    configured = settings.source_dsn(source)
    if configured is not None:
        return configured
    known = await with_demo_source(settings, make=False)
    if source == DEMO_SOURCE and DEMO_SOURCE in known.sources:
        return settings.database_url.get_secret_value()
    names = ", ".join(known.source_names()) or "none"
    raise UsageError(
        f"--source: no source named {source!r} is configured; known: {names} "
        "(`backfill up` sets up `demo` on its first start)"
    )


async def make_tables(dsn: str, rows: int) -> int:
    """The sample tables, filled once; later runs reuse them and empty the outputs."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {EVENTS} (
                        id bigint PRIMARY KEY, account integer NOT NULL, kind text NOT NULL,
                        amount numeric(10, 2) NOT NULL, created_at timestamptz NOT NULL);
                    CREATE TABLE IF NOT EXISTS {COPY} (LIKE {EVENTS} INCLUDING ALL);
                    CREATE TABLE IF NOT EXISTS {TOTALS} (
                        window_start timestamptz PRIMARY KEY, events bigint NOT NULL,
                        amount numeric NOT NULL);
                    TRUNCATE {COPY}, {TOTALS};"""
            )
            existing = int(await conn.fetchval(f"SELECT count(*) FROM {EVENTS}"))
            if existing == 0:
                # Spread evenly over January 2024, generated inside Postgres in one statement.
                await conn.execute(
                    f"""INSERT INTO {EVENTS}
                        SELECT g, g % 997, (ARRAY['view', 'click', 'order'])[1 + g % 3],
                               (g % 10000) / 100.0,
                               timestamptz '{MONTH_START} 00:00Z'
                                 + (g - 1) * (interval '31 days' / $1)
                        FROM generate_series(1, $1::bigint) AS g""",
                    rows,
                )
                existing = rows
            await conn.execute(f"ANALYZE {EVENTS}")
        return existing
    finally:
        await conn.close()


async def ensure_target(client: ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] | None = await client.find(f"/v1/targets/{body['name']}")
    if found is not None:
        return found
    created: dict[str, Any] = await client.post("/v1/targets", body)
    return created


@asynccontextmanager
async def demo_token(settings: Settings, token: str | None) -> AsyncIterator[str]:
    """The given key, or a short-lived one for team 1 made here and revoked afterwards."""
    if token:
        yield token
        return
    from orchestrator.access import AccessService
    from orchestrator.cli.server import connect_existing
    from orchestrator.domain.keys import Scope
    from orchestrator.storage.access import AccessRepository
    from orchestrator.storage.database import open_pool

    dsn = settings.database_url.get_secret_value()
    await (await connect_existing(dsn)).close()
    pool = await open_pool(dsn, min_size=1, max_size=2)
    try:
        access = AccessService(settings, AccessRepository(pool))
        made, info = await access.create_key(
            1, {Scope.READ, Scope.WRITE}, name=f"demo {secrets.token_hex(3)}"
        )
        try:
            yield made
        finally:
            await access.revoke_key(info.prefix)
    finally:
        await pool.close()


def default_url(settings: Settings) -> str:
    host = settings.http_host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.http_port}"


async def run_demo(
    settings: Settings, *, source: str, rows: int, url: str | None, token: str | None
) -> list[dict[str, Any]]:
    dsn = await tables_dsn(settings, source)
    output.notice(f"1/4 sample table {EVENTS} in source {source!r} ...")
    count = await make_tables(dsn, rows)
    output.notice(f"    {count:,} rows")
    async with (
        demo_token(settings, token) as key,
        open_client(url, key, default_url=default_url(settings)) as client,
    ):
        output.notice(f"2/4 targets on {client.base} ...")
        await ensure_target(
            client,
            {
                "name": TABLE_TARGET, "kind": "table", "source": source, "tables": [EVENTS],
                "chunk_size": 10_000,
                "sink": {"type": "postgres", "options": {"source": source, "table": COPY}},
            },
        )  # fmt: skip
        await ensure_target(
            client,
            {
                "name": WINDOW_TARGET, "kind": "date_range", "interval_type": "hour",
                "handler": {
                    "type": "sql", "options": {"source": source, "statement": TOTALS_STATEMENT},
                },
            },
        )  # fmt: skip
        output.notice("3/4 one backfill of each ...")
        copy = await client.post("/v1/backfills", {"target": TABLE_TARGET, "name": TABLE_TARGET})
        totals = await client.post(
            "/v1/backfills",
            {"target": WINDOW_TARGET, "name": WINDOW_TARGET, "start": MONTH_START,
             "end": MONTH_END,
             "interval_units": 6, "max_active_runs": 4},
        )  # fmt: skip
        output.notice(f"4/4 watching backfills {copy['id']} and {totals['id']} ...")
        return await watch_backfills(client, [copy["id"], totals["id"]], interval=0.5)


def next_steps(base: str) -> list[str]:
    return [
        "Where to look next:",
        f"  dashboard  {base}/ui/",
        f"  metrics    {base}/metrics",
        f"  API docs   {base}/docs",
        f"  CLI        backfill backfills list   (BACKFILL_URL={base})",
    ]


def demo(
    source: Annotated[
        str, typer.Option(help="the source to make the sample tables in and read from")
    ] = "demo",
    rows: Annotated[
        int, typer.Option(min=1, max=50_000_000, help="rows in the sample table")
    ] = 300_000,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Run two sample backfills on a running service (`make run`) and watch them.

    Without --token / BACKFILL_TOKEN it makes a key for team 1 and revokes it at the end."""
    settings = load_settings()
    try:
        finals = run(run_demo(settings, source=source, rows=rows, url=url, token=token))
    except (OSError, asyncpg.PostgresError) as exc:
        raise CliError(f"demo: {type(exc).__name__}: {exc}") from None
    for b in finals:
        output.out.print(summary(b), markup=False)
    base = str(url or default_url(settings)).rstrip("/")
    for line in next_steps(base):
        output.out.print(line, markup=False)
    code = exit_code(finals)
    if code:
        raise typer.Exit(code)
