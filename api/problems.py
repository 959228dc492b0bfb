"""The one error shape of the native API: RFC 9457 problem details.

Every error answer, whatever raised it, goes through `problem_response`, so clients parse one
shape: type, title, status, detail, code, request_id, errors, plus any extra members."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from api.render import json_response

PROBLEM_TYPE_BASE = "https://backfill-orchestrator.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    request_id: str | None,
    errors: Sequence[Mapping[str, Any]] = (),
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id,
        "errors": [dict(e) for e in errors],
    }
    # Extras add members (valid_states, ...) but never rename the standard ones a client
    # relies on.
    for key, value in (extra or {}).items():
        body.setdefault(key, value)
    return json_response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)
