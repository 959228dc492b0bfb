"""The webhook sink against a real receiver: rows arrive signed, in batches, with
idempotency keys; 5xx and 429 are retried (Retry-After honoured); another 4xx fails the
run with the response; URLs outside the allow-list are refused, at creation and when
called."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from orchestrator.context import Context
from orchestrator.outbound.allowlist import AllowList
from orchestrator.outbound.client import OutboundClient, retry_policy
from orchestrator.outbound.errors import DeliveryFailed
from orchestrator.settings import Settings
from tests.conftest import make_settings
from tests.handler_pkg.peer import WebhookPeer
from tests.helpers import api, make_target, start_backfill, target_body, wait_backfill

pytestmark = pytest.mark.integration

SECRET = "webhook-test-secret-0123456789"


@pytest.fixture
def settings(database: str, prefix: str) -> Settings:
    return make_settings(
        database,
        prefix,
        outbound_allow=["127.0.0.1"],
        signing_secrets={"hook": SECRET},
        outbound_backoff_base_seconds=0.05,
        outbound_backoff_max_seconds=0.2,
        outbound_timeout_seconds=5.0,
    )


@pytest.fixture
async def client(client: Any, ctx: Context) -> AsyncIterator[Any]:
    """conftest's client; afterwards the process's outbound connections are closed, as the
    service does on its way out."""
    yield client
    await ctx.resources.close()


@pytest.fixture
async def peer() -> AsyncIterator[WebhookPeer]:
    receiver = WebhookPeer(SECRET.encode())
    await receiver.start()
    yield receiver
    await receiver.stop()


async def make_items(db: Any, n: int) -> None:
    await db.execute(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, price numeric(12, 2))"
    )
    await db.execute(
        "INSERT INTO items SELECT g, 'item ' || g, g * 1.05 FROM generate_series(1, $1) g", n
    )


async def webhook_backfill(
    client: Any, url: str, *, batch_size: int = 100, max_attempts: int = 3, **options: Any
) -> dict[str, Any]:
    await make_target(
        client,
        "items-hook",
        "table",
        tables=["items"],
        chunk_size=500,
        sink={
            "type": "webhook",
            "options": {
                "url": url,
                "signing_secret": "hook",
                "batch_size": batch_size,
                **options,
            },
        },
    )
    created = await start_backfill(client, "items-hook", max_attempts=max_attempts)
    return await wait_backfill(client, created["id"], {"completed", "failed"})


async def test_every_row_arrives_once_signed_in_batches_with_idempotency_keys(
    client: Any, db: Any, peer: WebhookPeer
) -> None:
    await make_items(db, 1234)
    done = await webhook_backfill(client, f"{peer.url}/hooks/items")
    assert done["state"] == "completed", done
    assert done["rows_ingested_count"] == 1234

    assert all(r.signed for r in peer.received)
    bodies = [r.json() for r in peer.received]
    ids = [row["id"] for body in bodies for row in body["rows"]]
    assert sorted(ids) == list(range(1, 1235))
    assert len(set(ids)) == len(ids)
    # Runs of 500 rows in batches of 100: 12 full requests per 1200 rows, then 34 rows.
    assert sorted(len(b["rows"]) for b in bodies) == [34] + [100] * 12
    for received, body in zip(peer.received, bodies, strict=True):
        rows = body["rows"]
        assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
        key = f"{done['id']}:public.items:[{rows[0]['id']}]..[{rows[-1]['id']}]"
        assert body["idempotency_key"] == key
        assert received.headers["Idempotency-Key"] == key
        assert received.headers["X-Backfill-Id"] == str(done["id"])
        assert received.headers["X-Backfill-Table"] == "public.items"
        assert received.headers["X-Backfill-Action"] == "read"
        assert received.headers["Content-Type"] == "application/json"
        assert body["action"] == "read"
        assert body["key_columns"] == ["id"]
        assert body["backfill_id"] == done["id"]
    first = next(row for body in bodies for row in body["rows"] if row["id"] == 7)
    assert first == {"id": 7, "name": "item 7", "price": "7.35"}


async def test_a_500_is_retried_and_the_retry_signed_afresh(
    client: Any, db: Any, peer: WebhookPeer
) -> None:
    await make_items(db, 10)
    peer.then(500, {"error": "busy"})
    done = await webhook_backfill(client, peer.url)
    assert done["state"] == "completed", done

    assert len(peer.received) == 2
    failed, retried = peer.received
    assert failed.signed
    assert retried.signed
    assert failed.body == retried.body
    assert failed.headers["Idempotency-Key"] == retried.headers["Idempotency-Key"]
    assert failed.headers["X-Backfill-Delivery-Attempt"] == "1"
    assert retried.headers["X-Backfill-Delivery-Attempt"] == "2"
    runs = await api(client, "GET", f"/v1/backfills/{done['id']}/runs", 200)
    assert [r["attempt"] for r in runs["data"]] == [1], "retried within the request, not the run"


async def test_a_429_is_retried_after_the_time_it_asks_for(
    client: Any, db: Any, peer: WebhookPeer
) -> None:
    await make_items(db, 3)
    peer.then(429, {"error": "slow down"}, {"Retry-After": "1"})
    done = await webhook_backfill(client, peer.url)
    assert done["state"] == "completed", done
    assert len(peer.received) == 2
    # The usual backoff here is at most 0.05 s; only Retry-After makes it wait a second.
    assert peer.received[1].at - peer.received[0].at >= 0.95


async def test_a_400_fails_the_run_with_the_response_in_the_error_report(
    client: Any, db: Any, peer: WebhookPeer
) -> None:
    await make_items(db, 3)
    peer.then(400, {"error": "column price is not a number"})
    done = await webhook_backfill(client, peer.url, max_attempts=1)
    assert done["state"] == "failed", done
    assert len(peer.received) == 1, "a 400 is not retried"
    (entry,) = done["error_report"]
    assert "answered 400 Bad Request" in entry["error"]
    assert "column price is not a number" in entry["error"]
    assert entry["error"].startswith("DeliveryFailed: POST http://127.0.0.1:")


async def test_retries_end_and_fail_the_run_with_the_last_response(
    client: Any, db: Any, peer: WebhookPeer
) -> None:
    await make_items(db, 3)
    for _ in range(3):
        peer.then(503, {"error": "down"})
    done = await webhook_backfill(client, peer.url, max_attempts=1, request_attempts=3)
    assert done["state"] == "failed", done
    assert len(peer.received) == 3
    assert "answered 503" in done["error_report"][0]["error"]
    assert "gave up after 3 attempts" in done["error_report"][0]["error"]


async def test_urls_outside_the_allow_list_are_refused_at_creation(client: Any, db: Any) -> None:
    await make_items(db, 1)
    for url, words in [
        ("http://10.0.0.7/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]:8080/", "loopback"),
        ("https://user:password@example.com/", "credentials"),
        ("gopher://example.com/", "http"),
    ]:
        body = await api(
            client,
            "POST",
            "/v1/targets",
            422,
            json=target_body(
                "internal",
                "table",
                tables=["items"],
                sink={"type": "webhook", "options": {"url": url}},
            ),
        )
        assert body["code"] == "validation_failed", url
        assert body["detail"].startswith("the URL is not allowed"), url
        assert body["errors"][0]["pointer"] == "/sink/options/url", url
        assert words in body["errors"][0]["message"], url


async def test_an_unknown_signing_secret_is_refused_and_a_known_one_never_shown(
    client: Any, db: Any, peer: WebhookPeer
) -> None:
    await make_items(db, 1)
    target = target_body(
        "items-hook",
        "table",
        tables=["items"],
        sink={"type": "webhook", "options": {"url": peer.url, "signing_secret": "nope"}},
    )
    body = await api(client, "POST", "/v1/targets", 422, json=target)
    assert body["errors"][0]["pointer"] == "/sink/options/signing_secret"
    assert "hook" in body["errors"][0]["message"]  # names the configured secrets, not values

    target["sink"]["options"]["signing_secret"] = "hook"  # type: ignore[index]
    await api(client, "POST", "/v1/targets", 201, json=target)
    response = await client.get("/v1/targets/items-hook")
    text = await response.text()
    assert SECRET not in text
    assert json.loads(text)["sink"]["options"]["signing_secret"] == "hook"


async def test_a_name_that_resolves_inside_is_refused_when_called(peer: WebhookPeer) -> None:
    # The allow-list is enforced where the connection is made: "localhost" passes the URL
    # check (it is a name), and is refused once it resolves to a loopback address.
    client = OutboundClient(AllowList.parse([], allow_public=True))
    port = peer.url.rsplit(":", 1)[1]
    try:
        with pytest.raises(DeliveryFailed, match=r"localhost resolves to .* loopback") as caught:
            await client.post_json(
                f"http://localhost:{port}/hook",
                b"{}",
                headers={},
                secret=None,
                policy=retry_policy(make_settings("postgresql://unused/db", "unused")),
            )
    finally:
        await client.close()
    assert caught.value.retryable is False
    assert peer.received == []
