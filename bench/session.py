"""Things a scenario sets up once and keeps for the rest of the bench process (a filled
database, say), released by the runner when every scenario has run."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import TypeVar

T = TypeVar("T")

_stack = AsyncExitStack()


async def keep(manager: AbstractAsyncContextManager[T]) -> T:
    """Enters `manager` and leaves it only at close()."""
    return await _stack.enter_async_context(manager)


async def close() -> None:
    global _stack
    stack, _stack = _stack, AsyncExitStack()
    await stack.aclose()
