"""The grants in force for the work this task is doing (a run, a validation).

A context variable rather than a parameter: the sink and handler interfaces stay as they are,
and what needs a grant's limits (the sql handler's read-only transaction and statement
timeout) finds them where the check that allowed the work left them. Absent, the sql handler
takes the narrowest limits (read-only, the default timeout)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from orchestrator.domain.grants import SourceGrant

_GRANTS: ContextVar[Mapping[str, SourceGrant] | None] = ContextVar("source_grants", default=None)


def granted(source: str) -> SourceGrant | None:
    grants = _GRANTS.get()
    return grants.get(source) if grants is not None else None


@contextmanager
def using(grants: Mapping[str, SourceGrant]) -> Iterator[None]:
    token = _GRANTS.set(dict(grants))
    try:
        yield
    finally:
        _GRANTS.reset(token)
