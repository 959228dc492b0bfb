"""A new sink or handler is one module plus one registry line: the toy types below import
only the shared plugin base (orchestrator.plugins) and their own interface, and a single
entry in SINK_TYPES / HANDLER_TYPES makes every door find them: lookup, options parsing
with errors pointing into the request, and the grant check's data needs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel, ConfigDict

from orchestrator.domain.grants import Access, DataNeed, SourceGrant
from orchestrator.domain.models import HandlerSpec, SinkSpec
from orchestrator.errors import ValidationFailed
from orchestrator.grants.checks import handler_needs, sink_needs
from orchestrator.handlers.base import Handler, WindowRun
from orchestrator.handlers.registry import HANDLER_TYPES, handler_type
from orchestrator.plugins.options import parse_options
from orchestrator.plugins.resources import Resources
from orchestrator.settings import Settings
from orchestrator.sinks.base import RowBatch, Sink
from orchestrator.sinks.registry import SINK_TYPES, sink_type
from orchestrator.sources.pools import SourcePools

# ---------------------------------------------------------------- the toy plugins


class ToySinkOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    table: str


class _ToySink:
    def __init__(self) -> None:
        self.delivered: list[RowBatch] = []

    async def deliver(self, batch: RowBatch) -> int:
        self.delivered.append(batch)
        return len(batch.rows)

    async def close(self) -> None:
        return None


class ToySinkType:
    name = "toy"
    options_model: type[BaseModel] = ToySinkOptions

    def data_needs(self, options: BaseModel) -> list[DataNeed]:
        assert isinstance(options, ToySinkOptions)
        return [DataNeed(options.source, Access.WRITE, options.table, "/table")]

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        return None

    async def open(self, options: BaseModel, resources: Resources) -> Sink:
        return _ToySink()


class ToyHandlerOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: int = 1


class _ToyHandler:
    def __init__(self, rows: int) -> None:
        self.rows = rows

    async def run(self, window: WindowRun) -> int | None:
        return self.rows

    async def close(self) -> None:
        return None


class ToyHandlerType:
    name = "toy"
    options_model: type[BaseModel] = ToyHandlerOptions

    async def validate(self, options: BaseModel, resources: Resources) -> None:
        return None

    async def open(self, options: BaseModel, resources: Resources) -> Handler:
        assert isinstance(options, ToyHandlerOptions)
        return _ToyHandler(options.rows)


# ---------------------------------------------------------------- the one line each


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SINK_TYPES, ToySinkType.name, ToySinkType())
    monkeypatch.setitem(HANDLER_TYPES, ToyHandlerType.name, ToyHandlerType())


class _NoGrants:
    async def check(self, team_id: int, needs: Iterable[DataNeed]) -> dict[str, SourceGrant]:
        return {}


@pytest.fixture
def resources() -> Resources:
    settings = Settings()
    return Resources(settings=settings, sources=SourcePools(settings), grants=_NoGrants())


def test_unregistered_types_are_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValidationFailed) as sink:
        sink_type("toy")
    with pytest.raises(ValidationFailed) as handler:
        handler_type("toy")
    assert sink.value.errors[0]["pointer"] == "/sink/type"
    assert handler.value.errors[0]["pointer"] == "/handler/type"


@pytest.mark.usefixtures("registered")
async def test_a_registered_sink_is_found_parsed_checked_and_delivers(
    resources: Resources,
) -> None:
    kind = sink_type("toy")
    options = parse_options(
        "sink", "/sink/options", kind.options_model, {"source": "main", "table": "public.t"}
    )
    sink = await kind.open(options, resources)
    batch = RowBatch(
        table="public.src",
        columns=["id"],
        rows=[(1,), (2,)],
        key_columns=["id"],
        backfill_id=1,
        run_id=1,
    )

    assert await sink.deliver(batch) == 2
    await sink.close()
    await resources.close()
    spec = SinkSpec(type="toy", options={"source": "main", "table": "public.t"})
    assert sink_needs(spec) == [DataNeed("main", Access.WRITE, "public.t", "/sink/options/table")]


@pytest.mark.usefixtures("registered")
def test_a_registered_sinks_bad_options_point_into_the_request() -> None:
    with pytest.raises(ValidationFailed) as refused:
        sink_needs(SinkSpec(type="toy", options={"source": "main", "tabel": "public.t"}))
    pointers = {e["pointer"] for e in refused.value.errors}
    assert pointers == {"/sink/options/table", "/sink/options/tabel"}


@pytest.mark.usefixtures("registered")
async def test_a_registered_handler_is_found_parsed_and_runs(resources: Resources) -> None:
    kind = handler_type("toy")
    options = parse_options("handler", "/handler/options", kind.options_model, {"rows": 3})
    handler = await kind.open(options, resources)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    window = WindowRun(start, start, {}, backfill_id=1, run_id=1, attempt=1)

    assert await handler.run(window) == 3
    await handler.close()
    await resources.close()
    assert handler_needs(HandlerSpec(type="toy", options={})) == []  # declares none
