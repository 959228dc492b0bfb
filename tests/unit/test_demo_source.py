"""What the first start prints when its role may not make the demo source."""

from __future__ import annotations

import io

from orchestrator.sources.demo import _dsn_as, _explain, demo_role_name


def test_the_message_says_what_to_run() -> None:
    out = io.StringIO()
    _explain(out, "backfill_demo", "backfill", "app")
    text = out.getvalue()
    assert 'CREATE ROLE "backfill_demo" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE' in text
    assert 'ALTER DEFAULT PRIVILEGES FOR ROLE "app" IN SCHEMA public' in text
    assert 'BACKFILL_SOURCES=\'{"demo": "postgresql://backfill_demo:' in text
    assert "backfill sources grant demo --team 1 --read 'public.*' --write 'public.*' --sql" in text


def test_role_names_and_dsns() -> None:
    assert demo_role_name("backfill") == "backfill_demo"
    assert demo_role_name("My-DB") == "my_db_demo"
    assert _dsn_as("postgresql://root:pw@db:5432/backfill?x=1", "r", "p/w") == (
        "postgresql://r:p%2Fw@db:5432/backfill?x=1"
    )
    assert _dsn_as("postgresql://127.0.0.1:5432/backfill", "r", "p") == (
        "postgresql://r:p@127.0.0.1:5432/backfill"
    )
