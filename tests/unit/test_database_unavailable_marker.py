"""Storage marks the driver's connection failures as DatabaseUnavailable, the type the API
answers 503 by, and leaves a refused statement alone."""

from __future__ import annotations

import asyncpg
import pytest

from orchestrator.errors import DatabaseUnavailable
from orchestrator.storage.database import is_unavailable


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionResetError(104, "reset"),
        TimeoutError(),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.ConnectionDoesNotExistError("gone"),
        asyncpg.CannotConnectNowError("starting up"),
        asyncpg.TooManyConnectionsError("full"),
    ],
)
def test_a_connection_failure_is_database_unavailable(exc: Exception) -> None:
    assert is_unavailable(exc)
    assert isinstance(exc, DatabaseUnavailable)


@pytest.mark.parametrize(
    "exc", [asyncpg.UniqueViolationError("dup"), RuntimeError("bug"), ValueError()]
)
def test_anything_else_is_not(exc: Exception) -> None:
    assert not is_unavailable(exc)
    assert not isinstance(exc, DatabaseUnavailable)
