"""An error as a team may read it (a run's error_report, a validation message): the
database's own words about the team's data, bounded in length, with any connection string
taken out (a driver may quote the DSN it failed to reach)."""

from __future__ import annotations

import re

# The longest error a run keeps: enough for a database's message and its context line.
ERROR_TEXT_LIMIT = 1000

# Database and broker URLs, any URL carrying credentials, and key=value DSN passwords. Other
# URLs stay: a webhook's own address helps its team more than it tells anyone else.
_URL = re.compile(
    r"\b(?:postgres(?:ql)?|amqps?)://[^\s'\"]*|\b[a-z][a-z0-9+.-]*://[^\s/'\"@]*@[^\s'\"]*",
    re.IGNORECASE,
)
_PASSWORD = re.compile(r"\bpassword\s*=\s*\S+", re.IGNORECASE)


def redact(text: str) -> str:
    text = _URL.sub("[connection string removed]", text)
    return _PASSWORD.sub("password=[removed]", text)


def error_text(exc: BaseException, *, limit: int = ERROR_TEXT_LIMIT) -> str:
    text = redact(str(exc))
    return text if len(text) <= limit else text[: limit - 1] + "…"
