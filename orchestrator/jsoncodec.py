"""JSON in and out of the process fast (orjson), with the standard library behind it for
the rare value orjson refuses (an integer beyond 64 bits), so nothing that encoded before
fails now. Output is compact and UTF-8, as the API wrote it already."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=str)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def dumps_str(value: Any) -> str:
    return dumps(value).decode()


def loads(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        # What orjson cannot read (an integer beyond 64 bits) the standard library can;
        # what neither can read raises the standard library's ValueError.
        return json.loads(data)
