"""The http handler against a real receiver: one signed POST per window with the window,
the variables and the run's identity; `rows` in the answer is counted; failures are retried
or fail the run as the webhook sink's are; the allow-list guards the URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from orchestrator.context import Context
from orchestrator.settings import Settings
from tests.conftest import make_settings
from tests.handler_pkg.peer import Answer, Received, WebhookPeer
from tests.helpers import api, make_target, start_backfill, target_body, wait_backfill

pytestmark = pytest.mark.integration

SECRET = "http-handler-secret-0123456789"


@pytest.fixture
def settings(database: str, prefix: str) -> Settings:
    return make_settings(
        database,
        prefix,
        outbound_allow=["127.0.0.1"],
        signing_secrets={"loader": SECRET},
        outbound_backoff_base_seconds=0.05,
        outbound_backoff_max_seconds=0.2,
    )


@pytest.fixture
async def client(client: Any, ctx: Context) -> AsyncIterator[Any]:
    yield client
    await ctx.resources.close()


@pytest.fixture
async def peer() -> AsyncIterator[WebhookPeer]:
    receiver = WebhookPeer(SECRET.encode())
    await receiver.start()
    yield receiver
    await receiver.stop()


async def http_backfill(
    client: Any, url: str, *, days: int = 3, max_attempts: int = 3
) -> dict[str, Any]:
    await make_target(
        client,
        "warehouse-load",
        variables={"dataset": "orders"},
        handler={"type": "http", "options": {"url": url, "signing_secret": "loader"}},
    )
    created = await start_backfill(
        client,
        "warehouse-load",
        start="2024-03-01",
        end=f"2024-03-{days:02d}",
        interval_type="day",
        variables={"region": "eu"},
        max_attempts=max_attempts,
    )
    return await wait_backfill(client, created["id"], {"completed", "failed"})


async def test_each_window_is_posted_signed_and_its_rows_counted(
    client: Any, peer: WebhookPeer
) -> None:
    def answer(received: Received) -> Answer:
        return Answer(200, {"rows": int(received.json()["window_start"][8:10])})

    peer.default = answer
    done = await http_backfill(client, f"{peer.url}/load")
    assert done["state"] == "completed", done
    assert done["rows_processed_count"] == 1 + 2 + 3

    assert len(peer.received) == 3
    assert all(r.signed for r in peer.received)
    bodies = sorted((r.json() for r in peer.received), key=lambda b: b["window_start"])
    runs = await api(client, "GET", f"/v1/backfills/{done['id']}/runs", 200)
    run_ids = {r["window_start"]: r["id"] for r in runs["data"]}
    for day, body in enumerate(bodies, start=1):
        start, end = f"2024-03-{day:02d}T00:00:00+00:00", f"2024-03-{day + 1:02d}T00:00:00+00:00"
        assert body["window_start"] == start
        assert body["window_end"] == end
        assert body["backfill_id"] == done["id"]
        assert body["run_id"] in run_ids.values()
        assert body["attempt"] == 1
        assert body["idempotency_key"] == f"{done['id']}:{start}"
        variables = body["variables"]
        assert variables["dataset"] == "orders"  # the target's
        assert variables["region"] == "eu"  # the backfill's
        assert variables["window_start"] == start
        assert variables["execution_date"] == start
        assert variables["interval_seconds"] == 86400
        previous = f"2024-03-{day - 1:02d}" if day > 1 else "2024-02-29"  # a leap year
        assert variables["previous_window_start"] == f"{previous}T00:00:00+00:00"
    headers = peer.received[0].headers
    assert headers["Idempotency-Key"] == peer.received[0].json()["idempotency_key"]
    assert headers["X-Backfill-Id"] == str(done["id"])


async def test_a_window_without_rows_in_the_answer_counts_none(
    client: Any, peer: WebhookPeer
) -> None:
    peer.default = lambda _: Answer(204, None)
    done = await http_backfill(client, peer.url, days=2)
    assert done["state"] == "completed", done
    assert done["rows_processed_count"] == 0


async def test_a_503_is_retried_and_a_400_fails_the_run_with_the_response(
    client: Any, peer: WebhookPeer
) -> None:
    peer.then(503, {"error": "warming up"})
    peer.then(400, {"error": "unknown dataset orders"})
    done = await http_backfill(client, peer.url, days=1, max_attempts=1)
    assert done["state"] == "failed", done
    assert len(peer.received) == 2
    assert peer.received[0].body == peer.received[1].body
    (entry,) = done["error_report"]
    assert "answered 400" in entry["error"]
    assert "unknown dataset orders" in entry["error"]


async def test_the_url_must_pass_the_allow_list(client: Any) -> None:
    body = await api(
        client,
        "POST",
        "/v1/targets",
        422,
        json=target_body(
            "metadata", handler={"type": "http", "options": {"url": "http://169.254.169.254/"}}
        ),
    )
    assert body["errors"][0]["pointer"] == "/handler/options/url"
    assert "link-local" in body["errors"][0]["message"]
