"""The one check every door calls: may this team do these things with data?

What a target reads (its source tables), writes (a sink's destination) and runs (a handler's
statements) is listed as DataNeeds; each must be within an operator's grant to the team.
Checked before anything touches the source, so a refusal cannot tell a missing table from a
forbidden one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from pydantic import BaseModel

from orchestrator.domain.grants import Access, DataNeed, SourceGrant
from orchestrator.domain.models import HandlerSpec, SinkSpec
from orchestrator.errors import NotGranted
from orchestrator.handlers.registry import handler_type
from orchestrator.plugins.options import parse_options
from orchestrator.sinks.registry import sink_type


def _declared(kind: Any, options: BaseModel, pointer: str) -> list[DataNeed]:
    # A sink or handler type that names sources declares it with `data_needs(options)`.
    declare = getattr(kind, "data_needs", None)
    if declare is None:
        return []
    return [DataNeed(n.source, n.access, n.table, pointer + n.pointer) for n in declare(options)]


def sink_needs(sink: SinkSpec, pointer: str = "/sink") -> list[DataNeed]:
    kind = sink_type(sink.type)
    options = parse_options("sink", f"{pointer}/options", kind.options_model, sink.options)
    return _declared(kind, options, f"{pointer}/options")


def handler_needs(handler: HandlerSpec, pointer: str = "/handler") -> list[DataNeed]:
    kind = handler_type(handler.type)
    options = parse_options("handler", f"{pointer}/options", kind.options_model, handler.options)
    return _declared(kind, options, f"{pointer}/options")


def table_needs(source: str, tables: Iterable[str]) -> list[DataNeed]:
    return [DataNeed(source, Access.READ, table, f"/tables/{i}") for i, table in enumerate(tables)]


def target_needs(
    *,
    source: str | None,
    tables: Iterable[str],
    sink: SinkSpec | None,
    handler: HandlerSpec | None,
) -> list[DataNeed]:
    needs: list[DataNeed] = []
    if source is not None:
        needs += table_needs(source, tables)
    if sink is not None:
        needs += sink_needs(sink)
    if handler is not None:
        needs += handler_needs(handler)
    return needs


class GrantStore(Protocol):
    """Where the grants are kept (orchestrator.storage.grants.GrantRepository in a process);
    a protocol, so the checks and the use cases above them need not import storage."""

    async def get(self, team_id: int, source: str) -> SourceGrant | None: ...

    async def list(self, team_id: int | None = None) -> list[SourceGrant]: ...

    async def put(self, grant: SourceGrant) -> SourceGrant: ...

    async def delete(self, team_id: int, source: str) -> bool: ...


class GrantChecker:
    def __init__(self, repo: GrantStore) -> None:
        self.repo = repo

    async def granted(self, team_id: int) -> list[SourceGrant]:
        """What an operator granted the team, source by source (GET /v1/sources)."""
        return await self.repo.list(team_id)

    async def check(self, team_id: int, needs: Iterable[DataNeed]) -> dict[str, SourceGrant]:
        """The team's grants on the sources `needs` name; NotGranted (403) naming every need
        outside them."""
        needs = list(needs)
        grants: dict[str, SourceGrant] = {}
        for source in dict.fromkeys(n.source for n in needs):
            grant = await self.repo.get(team_id, source)
            if grant is not None:
                grants[source] = grant
        refused = [n for n in needs if not n.allowed_by(grants.get(n.source))]
        if refused:
            raise NotGranted(
                refused[0].refusal(),
                errors=[{"pointer": n.pointer, "message": n.refusal()} for n in refused],
            )
        return grants
