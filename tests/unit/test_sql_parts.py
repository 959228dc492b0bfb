"""Named SQL parts (storage/queries.py): a piece several statements share word for word is
written once and included where the statements need it."""

from __future__ import annotations

import pytest

from orchestrator.storage.queries import parse

SQL = """-- name: one
UPDATE t SET
    {part.lease}
WHERE id = $1;

-- part: lease
-- what a claim writes
state = {run.running},
worker_id = $2

-- name: two
WITH x AS (
    UPDATE t SET
        {part.lease}
    RETURNING *)
SELECT * FROM x;
"""


def test_a_part_is_included_where_it_is_named_at_the_placeholders_indent() -> None:
    blocks = parse([("a.sql", SQL)])
    assert blocks["one"] == (
        "UPDATE t SET\n    state = 'running',\n    worker_id = $2\nWHERE id = $1;"
    )
    assert "        state = 'running',\n        worker_id = $2\n    RETURNING" in blocks["two"]


def test_a_part_is_not_a_statement_and_its_comment_is_not_copied() -> None:
    blocks = parse([("a.sql", SQL)])
    assert set(blocks) == {"one", "two"}
    assert "what a claim writes" not in blocks["one"]


def test_a_missing_part_fails_at_load() -> None:
    with pytest.raises(RuntimeError, match="'nope' is used but not defined"):
        parse([("a.sql", "-- name: one\nSELECT\n    {part.nope}\n")])


def test_an_unused_part_fails_at_load() -> None:
    with pytest.raises(RuntimeError, match="used nowhere"):
        parse([("a.sql", "-- name: one\nSELECT 1;\n\n-- part: spare\nx = 1\n")])


def test_a_part_and_a_statement_cannot_share_a_name() -> None:
    with pytest.raises(RuntimeError, match="named twice"):
        parse([("a.sql", "-- name: one\nSELECT 1;\n"), ("b.sql", "-- part: one\nx = 1\n")])


def test_a_part_may_include_another_part() -> None:
    sql = SQL + "\n-- part: claim\nUPDATE t SET\n    {part.lease}\nRETURNING *\n\n"
    sql += "-- name: three\nWITH c AS (\n    {part.claim}\n)\nSELECT * FROM c;\n"
    blocks = parse([("a.sql", sql)])
    assert blocks["three"] == (
        "WITH c AS (\n    UPDATE t SET\n        state = 'running',\n        worker_id = $2\n"
        "    RETURNING *\n)\nSELECT * FROM c;"
    )


def test_a_statement_is_included_by_name_with_its_parameters_renamed() -> None:
    sql = SQL + (
        "\n-- name: fn\nBEGIN\n    FOR r IN\n        {statement.one(p_id, p_worker)}\n    LOOP\n"
        "    END LOOP;\n    {statement.two(v_a, $12)}\nEND\n"
    )
    blocks = parse([("a.sql", sql)])
    assert blocks["fn"].startswith(
        "BEGIN\n    FOR r IN\n        UPDATE t SET\n            state = 'running',\n"
        "            worker_id = p_worker\n        WHERE id = p_id\n    LOOP\n"
    )
    # Renamed once: an argument that is itself `$n` (the function's own) stays; no `;`.
    assert "            worker_id = $12\n        RETURNING" in blocks["fn"]
    assert "    SELECT * FROM x\nEND" in blocks["fn"]


def test_a_statement_given_too_few_arguments_fails_at_load() -> None:
    sql = SQL + "\n-- name: fn\nSELECT\n    {statement.one()}\n"
    with pytest.raises(RuntimeError, match=r"'one' uses \$\d: 0 arguments"):
        parse([("a.sql", sql)])


def test_a_part_is_included_with_its_parameters_renamed() -> None:
    sql = (
        "-- part: write\n-- what a claim writes\nlease = $1,\nworker_id = $2\n"
        "-- name: from_queue\nUPDATE t SET\n    {part.write($4, $5)}\nWHERE id = $1;\n"
        "-- name: anywhere\nUPDATE t SET\n    {part.write($2, $3)}\nWHERE id = $1;\n"
        "-- name: as_written\nUPDATE t SET\n    {part.write}\n;\n"
    )
    blocks = parse([("a.sql", sql)])
    assert blocks["from_queue"] == (
        "UPDATE t SET\n    lease = $4,\n    worker_id = $5\nWHERE id = $1;"
    )
    assert blocks["anywhere"] == (
        "UPDATE t SET\n    lease = $2,\n    worker_id = $3\nWHERE id = $1;"
    )
    # Without arguments, the part's own parameters stand.
    assert "    lease = $1,\n    worker_id = $2" in blocks["as_written"]


def test_a_part_given_too_few_arguments_fails_at_load() -> None:
    sql = "-- part: write\nlease = $1\n-- name: one\nUPDATE t SET\n    {part.write()}\n;\n"
    with pytest.raises(RuntimeError, match=r"part 'write' uses \$1: 0 arguments"):
        parse([("a.sql", sql)])
