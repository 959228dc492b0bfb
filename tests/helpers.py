"""Waiting on conditions with a deadline (never a bare sleep) and small API helpers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

POLL = 0.05


async def wait_until(
    probe: Callable[[], Awaitable[T]],
    *,
    within: float = 30.0,
    what: str = "condition",
) -> T:
    """Polls `probe` until it returns something truthy; fails with its last value at the
    deadline, so a failure says what the state was, not just that time ran out."""
    deadline = time.monotonic() + within
    last: Any = None
    while True:
        last = await probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}; last: {last!r}")
        await asyncio.sleep(POLL)  # noqa: TID251 - polling a condition, with a deadline


async def api(client: Any, method: str, path: str, expect: int | None = None, **kw: Any) -> Any:
    response = await client.request(method, path, **kw)
    body = await response.json() if response.content_type.endswith("json") else None
    if expect is not None:
        assert response.status == expect, f"{method} {path}: {response.status} {body}"
    return body


async def backfill_state(client: Any, backfill_id: int) -> dict[str, Any]:
    return await api(client, "GET", f"/v1/backfills/{backfill_id}", 200)  # type: ignore[no-any-return]


async def wait_backfill(
    client: Any, backfill_id: int, states: set[str], within: float = 60.0
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body = await backfill_state(client, backfill_id)
        return body if body["state"] in states else None

    return await wait_until(probe, within=within, what=f"backfill {backfill_id} in {states}")


def target_body(name: str, kind: str = "date_range", **fields: Any) -> dict[str, Any]:
    """The body of POST /v1/targets. A date-range target runs the `noop` handler and a table
    target copies the table of its own name to the `null` sink, unless `fields` say
    otherwise; a field given as None is left out."""
    given = {key: value for key, value in fields.items() if value is not None}
    body: dict[str, Any] = {"name": name, "kind": kind, **given}
    if kind == "date_range":
        body.setdefault("handler", {"type": "noop"})
    else:
        body.setdefault("tables", [name])
        body.setdefault("sink", {"type": "null"})
    return body


async def make_target(client: Any, name: str, kind: str = "date_range", **fields: Any) -> Any:
    """POST /v1/targets with `target_body(name, kind, **fields)`, expecting 201."""
    return await api(client, "POST", "/v1/targets", 201, json=target_body(name, kind, **fields))


def backfill_body(target: str | int, **fields: Any) -> dict[str, Any]:
    """The body of POST /v1/backfills."""
    return {"target": target, **fields}


async def start_backfill(client: Any, target: str | int, **fields: Any) -> Any:
    """POST /v1/backfills, expecting 201."""
    return await api(client, "POST", "/v1/backfills", 201, json=backfill_body(target, **fields))


HTTP_METHODS = ("get", "put", "post", "patch", "delete", "options", "trace")


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """An OpenAPI document's operations by (METHOD, path)."""
    return {
        (method.upper(), path): item[method]
        for path, item in document["paths"].items()
        for method in HTTP_METHODS
        if method in item
    }
