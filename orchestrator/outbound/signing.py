"""Request signatures: HMAC-SHA256 over the timestamp, a dot, and the exact body bytes.

The receiver recomputes it with the shared secret, compares in constant time, and rejects a
timestamp too far from its clock, so a captured request cannot be replayed later."""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Backfill-Timestamp"
SIGNATURE_HEADER = "X-Backfill-Signature"
SCHEME = "sha256="


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def signed_headers(secret: bytes, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(
    secret: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    *,
    now: float,
    tolerance_seconds: float = 300.0,
) -> bool:
    """What a receiver does; also the reference the docs' recipe follows."""
    if not timestamp_header or not signature_header or not timestamp_header.isdigit():
        return False
    timestamp = int(timestamp_header)
    if abs(now - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), signature_header)
