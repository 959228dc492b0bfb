"""The least-privilege rules a source's database role must keep.

A team's statement runs as the source's login role, and a statement can undo a `SET ROLE`
(`RESET ROLE`, `set_config('role', …)`), so the boundary is the login role itself: checked
on start and on first connect, through the source's own connection."""

from __future__ import annotations

from typing import Any

import asyncpg

from orchestrator.storage.migrate import SCHEMA

# Roles that reach server files and programs, or read and write every table (including the
# orchestrator's, whatever its schema's privileges say). Absent in older servers: skipped.
SERVER_ROLES = (
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_read_all_data",
    "pg_write_all_data",
)

# session_user, not current_user: the login role is what a statement can always get back to.
_CHECK = """
SELECT
  EXISTS (SELECT 1 FROM pg_roles r
          WHERE r.rolsuper AND pg_has_role(session_user, r.oid, 'MEMBER')) AS superuser,
  EXISTS (SELECT 1 FROM pg_roles r
          WHERE r.rolcreaterole AND pg_has_role(session_user, r.oid, 'MEMBER')) AS createrole,
  ARRAY(SELECT name FROM unnest($1::text[]) AS name
        WHERE to_regrole(name) IS NOT NULL
          AND pg_has_role(session_user, to_regrole(name), 'MEMBER')) AS server_roles,
  EXISTS (SELECT 1 FROM pg_namespace n
          WHERE n.nspname = $2
            AND (has_schema_privilege(session_user, n.oid, 'USAGE')
                 OR has_schema_privilege(session_user, n.oid, 'CREATE')
                 OR pg_has_role(session_user, n.nspowner, 'MEMBER'))) AS orchestrator_schema
"""


async def role_violations(
    conn: asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any],
) -> list[str]:
    """What is wrong with the role this connection logged in as; empty when nothing is."""
    row = await conn.fetchrow(_CHECK, list(SERVER_ROLES), SCHEMA)
    assert row is not None
    found: list[str] = []
    if row["superuser"]:
        found.append("the role is (or may become) a superuser")
    if row["createrole"]:
        found.append("the role may create roles (and grant itself more)")
    if row["server_roles"]:
        found.append("the role is a member of " + ", ".join(row["server_roles"]))
    if row["orchestrator_schema"]:
        found.append(f"the role may use the orchestrator's schema {SCHEMA!r}")
    return found
