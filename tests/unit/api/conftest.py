from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from api_fakes import FakeAccess, FakeProbes, FakeService, usecases_of

from api import create_app
from orchestrator.settings import Settings


@pytest.fixture
def service() -> FakeService:
    return FakeService()


@pytest.fixture
def probes() -> FakeProbes:
    return FakeProbes()


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in list(os.environ):
        if name.startswith("BACKFILL_"):
            monkeypatch.delenv(name)
    return Settings()


@pytest.fixture
async def client(
    settings: Settings, service: FakeService, probes: FakeProbes
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = create_app(settings, usecases_of(service), probes, FakeAccess(settings))
    headers = {"Authorization": f"Bearer {FakeAccess.TOKEN}"}
    async with TestClient(TestServer(app), headers=headers) as test_client:
        yield test_client
