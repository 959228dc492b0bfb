"""Which API a path belongs to. The compatibility APIs keep their systems' paths, so the
path alone decides the error shape and how the key may be presented."""

from __future__ import annotations

from enum import Enum


class Dialect(Enum):
    NATIVE = "native"
    SEQUIN = "sequin"
    SUPERMETRICS = "supermetrics"
    MAGE = "mage"


SEQUIN_PREFIX = "/api/sinks/"
SUPERMETRICS_PREFIX = "/v1/teams/"
MAGE_PREFIXES = ("/api/pipelines/", "/api/backfills/")
MAGE_BACKFILLS = "/api/backfills"


def dialect_of(path: str) -> Dialect:
    if path.startswith(SEQUIN_PREFIX):
        return Dialect.SEQUIN
    if path.startswith(SUPERMETRICS_PREFIX):
        return Dialect.SUPERMETRICS
    if path == MAGE_BACKFILLS or path.startswith(MAGE_PREFIXES):
        return Dialect.MAGE
    return Dialect.NATIVE


def is_compat(path: str) -> bool:
    return dialect_of(path) is not Dialect.NATIVE
