"""Reading a JSON request body from a file (or `-` for stdin) for `create -f FILE`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from orchestrator.cli.errors import UsageError


def read_json_object(path: str, option: str = "-f") -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror or exc}") from None
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{option} {path}: not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise UsageError(f"{option} {path}: expected a JSON object, got {type(body).__name__}")
    return body
