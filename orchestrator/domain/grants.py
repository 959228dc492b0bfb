"""What an operator granted a team on a named source, and whether a table is within it.

Pure rules: the checks that use them (orchestrator.grants) and the storage of grants
(orchestrator.storage.grants) live elsewhere."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Never a source table nor a destination, whatever a grant says: the catalogs, and the
# orchestrator's own state (its schema name is fixed, see orchestrator.storage.migrate).
SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast", "orchestrator"})
_SYSTEM_PREFIXES = ("pg_temp", "pg_toast_temp")

_PART = r"[A-Za-z0-9_$*?\[\]-]{1,63}"
PATTERN_RE = re.compile(rf"^{_PART}\.{_PART}$")

DEFAULT_STATEMENT_TIMEOUT_MS = 60_000


def split_table(qualified: str) -> tuple[str, str]:
    schema, _, name = qualified.partition(".")
    return schema, name


def system_schema(schema: str) -> bool:
    lowered = schema.lower()
    return lowered in SYSTEM_SCHEMAS or lowered.startswith(_SYSTEM_PREFIXES)


def matches(pattern: str, qualified: str) -> bool:
    """`analytics.*` matches every table of `analytics`; `*.orders` the table `orders` of any
    schema the grant may reach. Names compare as Postgres folds unquoted names: lower case."""
    p_schema, p_name = split_table(pattern.lower())
    schema, name = split_table(qualified.lower())
    return fnmatch.fnmatchcase(schema, p_schema) and fnmatch.fnmatchcase(name, p_name)


def within(patterns: list[str], qualified: str) -> bool:
    schema, _ = split_table(qualified)
    if system_schema(schema):
        return False
    return any(matches(p, qualified) for p in patterns)


class SourceGrant(BaseModel):
    """What one team may do on one source. Tables are `schema.table` patterns."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    team_id: int
    source: str
    read_tables: list[str] = Field(default_factory=list)
    write_tables: list[str] = Field(default_factory=list)
    sql_handler: bool = False
    statement_timeout_ms: int = Field(default=DEFAULT_STATEMENT_TIMEOUT_MS, gt=0)
    granted_at: datetime | None = None
    updated_at: datetime | None = None

    @field_validator("read_tables", "write_tables")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not PATTERN_RE.match(pattern):
                raise ValueError(
                    f"{pattern!r} is not a schema-qualified table or pattern "
                    "(analytics.orders, analytics.*)"
                )
            if system_schema(split_table(pattern)[0]):
                raise ValueError(
                    f"{pattern!r}: system schemas and the orchestrator's are never granted"
                )
        return sorted(set(value))

    def may_read(self, qualified: str) -> bool:
        return within(self.read_tables, qualified)

    def may_write(self, qualified: str) -> bool:
        return within(self.write_tables, qualified)

    @property
    def sql_writes(self) -> bool:
        """The sql handler's transaction is read-only unless the grant allows writes."""
        return bool(self.write_tables)


class Access(StrEnum):
    READ = "read"
    WRITE = "write"
    SQL = "sql"


@dataclass(frozen=True)
class DataNeed:
    """One thing a target, sink or handler would do with data: read or write a table of a
    source, or run statements there (the sql handler)."""

    source: str
    access: Access
    table: str | None = None  # schema.table, for read and write
    pointer: str = ""  # where in the request it was named

    def allowed_by(self, grant: SourceGrant | None) -> bool:
        if grant is None:
            return False
        if self.access == Access.SQL:
            return grant.sql_handler
        assert self.table is not None
        if self.access == Access.READ:
            return grant.may_read(self.table)
        return grant.may_write(self.table)

    def refusal(self) -> str:
        """The same words whether or not the source or table exists."""
        if self.access == Access.SQL:
            return f"the sql handler on source {self.source!r} is not granted to this team"
        verb = "reading" if self.access == Access.READ else "writing"
        return f"{verb} {self.table} on source {self.source!r} is not granted to this team"
