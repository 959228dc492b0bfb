"""Options shared by the commands, and running a REST command's coroutine."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer

from orchestrator.cli.client import DEFAULT_URL, TOKEN_ENV, URL_ENV
from orchestrator.cli.errors import CliError, Exit

T = TypeVar("T")

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url", envvar=URL_ENV, show_envvar=True, help=f"the API's base URL [{DEFAULT_URL}]"
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar=TOKEN_ENV, show_envvar=True, help="an API key (bfk_...)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON (for scripts)")]


def run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except KeyboardInterrupt:
        raise CliError("interrupted (backfills go on)", Exit.INTERRUPTED) from None
