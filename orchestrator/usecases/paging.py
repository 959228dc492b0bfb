"""Keyset pages, as every list of the API returns them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """A keyset page: pass `next_after` back as `after` to get the next one."""

    items: list[T]
    next_after: int | None


def page_of(items: list[T], limit: int, key: Callable[[T], int]) -> Page[T]:
    """A page from up to `limit + 1` items read: the one past the limit says there is more."""
    more = len(items) > limit
    items = items[:limit]
    return Page(items, key(items[-1]) if more else None)
