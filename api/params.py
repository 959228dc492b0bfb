"""Query and path parameters.

Query errors are collected and raised together, as one 422 whose entries name the parameter
(there is no body to point into). A path segment that cannot name anything is a 404: the
resource at that URL does not exist."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import TypeVar
from uuid import UUID

from multidict import MultiMapping

from orchestrator.errors import NotFound, ValidationFailed

E = TypeVar("E", bound=StrEnum)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Ids are Postgres bigints; a larger number cannot name a row.
_MAX_ID = 2**63 - 1
_DIGITS = re.compile(r"[0-9]+")


class QueryParams:
    """Reads typed values out of a query string, remembering every problem it meets."""

    def __init__(self, query: MultiMapping[str], *, allowed: Iterable[str]) -> None:
        self._query = query
        self._errors: list[dict[str, str]] = []
        # Unknown parameters are refused like unknown body fields: a typo such as ?stat=
        # would otherwise silently widen the result.
        for name in sorted(set(query) - set(allowed)):
            self._fail(name, "Unknown query parameter")

    def _fail(self, name: str, message: str) -> None:
        self._errors.append({"parameter": name, "message": message})

    def _single(self, name: str) -> str | None:
        values = self._query.getall(name, [])
        if len(values) > 1:
            self._fail(name, "Give this parameter at most once")
            return None
        if not values:
            return None
        # An empty value (`?after=`) means "not given", as form-built URLs send them.
        return values[0].strip() or None

    def integer(
        self, name: str, *, default: int | None = None, minimum: int = 0, maximum: int = _MAX_ID
    ) -> int | None:
        raw = self._single(name)
        if raw is None:
            return default
        if not _DIGITS.fullmatch(raw):
            self._fail(name, "Input should be a non-negative integer")
            return default
        value = _to_int(raw)
        if value is None or not minimum <= value <= maximum:
            self._fail(name, f"Input should be between {minimum} and {maximum}")
            return default
        return value

    def boolean(self, name: str) -> bool:
        """`true`/`false` (also 1/0); absent is false."""
        raw = self._single(name)
        if raw is None:
            return False
        value = {"true": True, "1": True, "false": False, "0": False}.get(raw.lower())
        if value is None:
            self._fail(name, "Input should be true or false")
            return False
        return value

    def after(self) -> int | None:
        return self.integer("after")

    def limit(self) -> int:
        value = self.integer("limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
        return DEFAULT_LIMIT if value is None else value

    def states(self, name: str, enum: type[E]) -> list[E] | None:
        """Repeated (`?state=a&state=b`) or comma-separated (`?state=a,b`), or both."""
        given = [item.strip() for raw in self._query.getall(name, []) for item in raw.split(",")]
        given = [item for item in given if item]
        if not given:
            return None
        valid = [member.value for member in enum]
        chosen: list[E] = []
        for item in given:
            if item not in valid:
                self._fail(name, "Input should be one of " + ", ".join(valid))
                continue
            member = enum(item)
            if member not in chosen:
                chosen.append(member)
        return chosen

    def check(self) -> None:
        if self._errors:
            raise ValidationFailed(
                "The query parameters are invalid; see errors.", errors=self._errors
            )


def target_ref(segment: str) -> int | str:
    """A target is addressed by id or by name; an all-digit segment is taken as the id."""
    return _id(segment, "target") if _DIGITS.fullmatch(segment) else segment


def target_id(segment: str) -> int:
    if not _DIGITS.fullmatch(segment):
        raise NotFound("No such target; this route takes a numeric target id.")
    return _id(segment, "target")


def backfill_ref(segment: str) -> int | UUID:
    if _DIGITS.fullmatch(segment):
        return _id(segment, "backfill")
    try:
        return UUID(segment)
    except ValueError:
        raise NotFound("No such backfill; address it by numeric id or uuid.") from None


def _id(segment: str, entity: str) -> int:
    value = _to_int(segment)
    if value is None:
        raise NotFound(f"No such {entity}.")
    return value


def _to_int(digits: str) -> int | None:
    """None past the bigint range. The length check comes first because int() refuses
    strings of thousands of digits, and a URL can carry them."""
    if len(digits) > len(str(_MAX_ID)):
        return None
    value = int(digits)
    return value if value <= _MAX_ID else None
