"""The API over the real use cases on this test's own database (tests/conftest.py makes it from
the migrated template). Nothing here talks to RabbitMQ: the API only writes commands to the
outbox, and readiness and queue depths come from `FakeProbes`, which the tests steer to make
a dependency fail on demand.

`usecases` is the one place that builds what the app calls; the other fixtures reach the
use cases only through it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api import create_app
from orchestrator.access import AccessService
from orchestrator.domain.keys import ALL_SCOPES
from orchestrator.settings import Settings
from orchestrator.sources.pools import SourcePools
from orchestrator.storage.access import AccessRepository
from orchestrator.storage.database import Pool, open_pool
from orchestrator.storage.stores import Storage
from orchestrator.usecases import UseCases, build_usecases
from tests.conftest import copy_template, db_url, drop_database, make_settings
from tests.integration.api.probes import FakeProbes

Client = TestClient[web.Request, web.Application]


@pytest.fixture(scope="session")
async def dropping(template_db: str) -> AsyncIterator[set[asyncio.Task[None]]]:
    """Databases being dropped behind the tests' backs; all gone when the session ends,
    before the template and the source role they were copied with (hence `template_db`)."""
    tasks: set[asyncio.Task[None]] = set()
    yield tasks
    await asyncio.gather(*tasks)


@pytest.fixture
async def database(template_db: str, dropping: set[asyncio.Task[None]]) -> AsyncIterator[str]:
    """A fresh copy of the template per test, as tests/conftest.py makes it, but dropped in
    the background: DROP DATABASE waits for a checkpoint (up to seconds on a busy machine),
    and these tests are short. Drops that overlap share one checkpoint."""
    name = await copy_template(template_db)
    yield db_url(name)
    dropping.add(asyncio.create_task(drop_database(name)))


@pytest.fixture
def settings(database: str) -> Settings:
    # A prefix of its own though no exchange is ever declared: nothing to delete afterwards,
    # so no broker connection per test (the `prefix` fixture would make one).
    return make_settings(database, f"bfapi-{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[Pool]:
    opened = await open_pool(settings.database_url.get_secret_value(), min_size=1, max_size=4)
    yield opened
    await opened.close()


@pytest.fixture
async def sources(settings: Settings) -> AsyncIterator[SourcePools]:
    pools = SourcePools(settings)
    yield pools
    await pools.close()


@pytest.fixture
async def usecases(settings: Settings, pool: Pool, sources: SourcePools) -> AsyncIterator[UseCases]:
    """What the app serves, as `open_context` builds it, minus the broker."""
    storage = Storage.build(
        pool,
        capacity=Storage.capacity(settings.dispatch_capacity),
        cancel_inline_runs=settings.cancel_inline_runs,
    )
    built = build_usecases(settings, storage, sources)
    yield built
    await built.resources.close()


@pytest.fixture
def probes() -> FakeProbes:
    return FakeProbes()


@pytest.fixture
def access(settings: Settings, pool: Pool) -> AccessService:
    return AccessService(settings, AccessRepository(pool))


@pytest.fixture
async def token(access: AccessService) -> str:
    """A key of team 1 with every scope, as the bootstrap makes."""
    created, _ = await access.create_key(1, set(ALL_SCOPES), name="tests")
    return created


@pytest.fixture
async def client(
    settings: Settings,
    usecases: UseCases,
    probes: FakeProbes,
    access: AccessService,
    token: str,
) -> AsyncIterator[Client]:
    app = create_app(settings, usecases, probes, access)
    headers = {"Authorization": f"Bearer {token}"}
    async with TestClient(TestServer(app), headers=headers) as test_client:
        yield test_client


@pytest.fixture
def fail_target_listing(
    usecases: UseCases, monkeypatch: pytest.MonkeyPatch
) -> Callable[[BaseException], None]:
    """Makes listing targets raise `error`: how a failure below the API reaches a client."""

    def fail(error: BaseException) -> None:
        async def failing(*_: object, **__: object) -> None:
            raise error

        monkeypatch.setattr(usecases.targets, "page", failing)

    return fail


@pytest.fixture
def fail_overview(
    usecases: UseCases, monkeypatch: pytest.MonkeyPatch
) -> Callable[[BaseException], None]:
    """Makes the database read behind /metrics and /ops/overview raise `error`."""

    def fail(error: BaseException) -> None:
        async def failing() -> dict[str, Any]:
            raise error

        monkeypatch.setattr(usecases.ops, "overview", failing)

    return fail


@pytest.fixture
def request_ids_seen(usecases: UseCases, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The request id bound in the log context each time targets are listed: a spy that lets
    the real call through."""
    import structlog

    seen: list[Any] = []
    listing = usecases.targets.page

    async def spying(*args: Any, **kwargs: Any) -> Any:
        seen.append(structlog.contextvars.get_contextvars().get("request_id"))
        return await listing(*args, **kwargs)

    monkeypatch.setattr(usecases.targets, "page", spying)
    return seen


@pytest.fixture
async def orders_table(pool: Pool) -> str:
    """`public.orders` in the test database (the source `main`), which TABLE_TARGET copies."""
    await pool.execute(
        "CREATE TABLE public.orders (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL)"
    )
    return "public.orders"
