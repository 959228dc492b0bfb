"""The two targets the API tests create, built like every other test's bodies."""

from __future__ import annotations

from typing import Any

from tests.helpers import target_body

# Copies `public.orders` (the `orders_table` fixture makes it) to the `null` sink (a webhook
# would be checked against the outbound allowlist and DNS, which is not what these test).
TABLE_TARGET: dict[str, Any] = target_body(
    "orders-to-search",
    "table",
    tables=["orders"],
    sort_column="updated_at",
    sink={"type": "null", "options": {}},
)
DATE_RANGE_TARGET: dict[str, Any] = target_body(
    "hourly-aggregates",
    handler={"type": "sql", "options": {"statement": "select 1"}},
    variables={"region": "eu"},
    interval_type="hour",
)
