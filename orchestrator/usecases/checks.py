"""The checks that look outside the domain: a team's grants, and the sources, sinks and
handlers a target names. Shared by the use cases that create or start anything."""

from __future__ import annotations

from typing import Any

from orchestrator.domain.models import HandlerSpec, SinkSpec, Target
from orchestrator.domain.specs import BackfillSpec
from orchestrator.domain.values import check_table_run_count, field_error, table_of
from orchestrator.errors import SourceError
from orchestrator.grants.checks import GrantChecker, handler_needs, sink_needs, table_needs
from orchestrator.grants.scope import using
from orchestrator.handlers.registry import handler_type
from orchestrator.plugins.options import parse_options
from orchestrator.plugins.resources import Resources
from orchestrator.settings import Settings
from orchestrator.sinks.registry import sink_type
from orchestrator.sources.pools import SourcePools
from orchestrator.sources.tables import TableShape, describe_table, estimate_rows


class DataChecks:
    def __init__(
        self, settings: Settings, sources: SourcePools, grants: GrantChecker, resources: Resources
    ) -> None:
        self.settings = settings
        self.sources = sources
        self.grants = grants
        self.resources = resources

    async def sink(self, sink: SinkSpec, team_id: int) -> None:
        # The grant first: a destination outside it is refused before anything looks at it.
        grants = await self.grants.check(team_id, sink_needs(sink))
        kind = sink_type(sink.type)
        options = parse_options("sink", "/sink/options", kind.options_model, sink.options)
        with using(grants):
            await kind.validate(options, self.resources)

    async def handler(self, handler: HandlerSpec, team_id: int) -> None:
        grants = await self.grants.check(team_id, handler_needs(handler))
        kind = handler_type(handler.type)
        options = parse_options("handler", "/handler/options", kind.options_model, handler.options)
        with using(grants):
            await kind.validate(options, self.resources)

    async def target_data(self, target: Target) -> None:
        """A stored target's sink and handler, against its team's grants as they are now."""
        needs = []
        if target.sink is not None:
            needs += sink_needs(target.sink)
        if target.handler is not None:
            needs += handler_needs(target.handler)
        await self.grants.check(target.team_id, needs)

    async def describe(
        self, source: str, table: str, sort_column: str | None, *, team_id: int
    ) -> TableShape:
        await self.grants.check(team_id, table_needs(source, [table]))
        if not self.sources.known(source):
            # Only a team granted this name gets here; the list of sources stays unsaid.
            raise field_error("/source", f"source {source!r} is not configured")
        pool = await self.sources.get(source)
        async with pool.acquire() as conn:
            shape = await describe_table(conn, table, sort_column)
        # Once more by the name Postgres resolved, in case it differs from the one given.
        await self.grants.check(team_id, table_needs(source, [shape.qualified]))
        return shape

    async def table_values(self, spec: BackfillSpec, target: Target) -> dict[str, Any]:
        """The columns of a table backfill: its table described and its size estimated."""
        table = table_of(spec, target)
        assert target.source is not None
        try:
            shape = await self.describe(
                target.source, table, target.sort_column, team_id=target.team_id
            )
        except SourceError as exc:
            raise field_error("/table", exc.detail) from None
        chunk_size = spec.chunk_size or target.chunk_size
        pool = await self.sources.get(target.source)
        async with pool.acquire() as conn:
            estimate = await estimate_rows(conn, table)
        check_table_run_count(estimate, chunk_size, self.settings.max_runs_per_backfill)
        return {
            "table_name": table,
            "sort_column": shape.sort_column,
            "key_columns": shape.key_columns,
            "key_types": shape.key_types,
            "chunk_size": chunk_size,
            "variables": {},
        }
