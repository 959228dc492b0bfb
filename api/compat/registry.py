"""The compatibility dialects the app serves, one line each. A new dialect is its module
(declaring a `Dialect`) plus a line here."""

from __future__ import annotations

from api.compat import mage, sequin, supermetrics
from api.compat.dialect import Dialect

DIALECTS: tuple[Dialect, ...] = (
    sequin.DIALECT,
    supermetrics.DIALECT,
    mage.DIALECT,
)
