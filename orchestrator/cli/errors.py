"""How the `backfill` command ends: one line on stderr and an exit code a script can test."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """Exit codes of every `backfill` command (documented in docs/cli.md)."""

    OK = 0
    ERROR = 1  # the command failed; for REST commands, the server answered with an error
    USAGE = 2  # bad arguments, options or BACKFILL_* values
    FAILED = 3  # `watch`: the backfill ended failed
    CANCELLED = 4  # `watch`: the backfill ended cancelled
    UNREACHABLE = 5  # no answer from the server (refused, timed out, not HTTP)
    AUTH = 6  # no token, or the server refused it (401) or its scope (403)
    INTERRUPTED = 130  # Ctrl-C


class CliError(Exception):
    """Raised anywhere in a command; `main` prints `message` as one line and exits with
    `code`, without a traceback."""

    def __init__(self, message: str, code: Exit = Exit.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class UsageError(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, Exit.USAGE)
