"""Browser origins as the CORS setting names them: `*`, or `scheme://host[:port]`."""

from __future__ import annotations

import re

_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


def check_origin(origin: str) -> str:
    """The origin as given, or ValueError saying what an origin looks like (a browser sends
    exactly scheme, host and port: a path or a trailing slash would never match)."""
    if origin == "*" or _ORIGIN.fullmatch(origin):
        return origin
    raise ValueError(
        f"BACKFILL_CORS_ORIGINS: {origin!r} is not an origin; use '*' or "
        "scheme://host[:port], such as https://app.example.com"
    )
