"""The outbound HTTP client: one aiohttp session per process whose resolver enforces the
allow-list, and a POST that signs, times out, and retries as policy.py says."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from orchestrator.outbound.allowlist import AllowList, DestinationRefused
from orchestrator.outbound.errors import DeliveryFailed
from orchestrator.outbound.policy import Outcome, RetryPolicy, classify, parse_retry_after
from orchestrator.outbound.signing import signed_headers
from orchestrator.settings import Settings

log = structlog.get_logger(__name__)

USER_AGENT = "backfill-orchestrator"
ATTEMPT_HEADER = "X-Backfill-Delivery-Attempt"
# Enough of a response to explain a refusal or to read {"rows": n}; the rest is not read.
MAX_RESPONSE_BYTES = 64 * 1024
ERROR_BODY_CHARS = 500


class GuardedResolver(AbstractResolver):
    """Resolves as usual, then refuses the whole answer if any address is not allowed. The
    connection is made to exactly these addresses, so what was checked is what is called."""

    def __init__(self, allow: AllowList, inner: AbstractResolver | None = None) -> None:
        self._allow = allow
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        self._allow.check_resolved(host, [r["host"] for r in results])
        return results

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any | None:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def excerpt(self) -> str:
        text = self.body.decode("utf-8", "replace").strip()
        if len(text) > ERROR_BODY_CHARS:
            text = text[:ERROR_BODY_CHARS] + "…"
        return text


def public_url(url: URL) -> str:
    """The URL as errors and logs show it: no query (it may hold tokens), no fragment."""
    return str(url.with_query(None).with_fragment(None))


def allow_list(settings: Settings) -> AllowList:
    return AllowList.parse(settings.outbound_allow, allow_public=settings.outbound_allow_public)


def retry_policy(
    settings: Settings, *, attempts: int | None = None, timeout_seconds: float | None = None
) -> RetryPolicy:
    return RetryPolicy(
        attempts=attempts or settings.outbound_attempts,
        timeout_seconds=timeout_seconds or settings.outbound_timeout_seconds,
        backoff_base_seconds=settings.outbound_backoff_base_seconds,
        backoff_max_seconds=settings.outbound_backoff_max_seconds,
        retry_after_max_seconds=settings.outbound_retry_after_max_seconds,
    )


class OutboundClient:
    def __init__(self, allow: AllowList) -> None:
        self._allow = allow
        self._session: aiohttp.ClientSession | None = None
        self._rng = random.Random()

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self._allow))
            # trust_env stays off: a proxy from the environment would make the connection,
            # and the allow-list would then check the proxy instead of the destination.
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": USER_AGENT}, trust_env=False
            )
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def post_json(
        self,
        url: str,
        body: bytes,
        *,
        headers: Mapping[str, str],
        secret: bytes | None,
        policy: RetryPolicy,
    ) -> Response:
        """POSTs `body` until a 2xx answers; raises DeliveryFailed when the destination is
        not allowed, answers a status that is not retried, or attempts run out."""
        attempt = 0
        while True:
            attempt += 1
            try:
                target = self._allow.check_url(url)
            except DestinationRefused as exc:
                # Not the URL itself: the refusal may be that it carries credentials.
                raise DeliveryFailed(f"POST refused: {exc}", retryable=False) from None
            problem, response = await self._attempt(target, body, headers, secret, policy, attempt)
            if problem is None:
                assert response is not None
                return response
            wait = policy.wait_before_next(attempt, problem.retry_after, self._rng)
            log.warning(
                "outbound_attempt_failed",
                url=public_url(target),
                attempt=attempt,
                problem=problem.text,
                retry_in=wait,
            )
            if wait is None:
                if attempt >= policy.attempts:
                    detail = f"{problem.text}; gave up after {attempt} attempts"
                else:
                    detail = (
                        f"{problem.text}; asked to retry after {problem.retry_after:g}s, more "
                        f"than BACKFILL_OUTBOUND_RETRY_AFTER_MAX_SECONDS "
                        f"({policy.retry_after_max_seconds:g}s)"
                    )
                raise DeliveryFailed(detail, retryable=True, extra=problem.extra)
            await asyncio.sleep(wait)

    async def _attempt(
        self,
        target: URL,
        body: bytes,
        headers: Mapping[str, str],
        secret: bytes | None,
        policy: RetryPolicy,
        attempt: int,
    ) -> tuple[_Problem | None, Response | None]:
        sent = {**headers, "Content-Type": "application/json", ATTEMPT_HEADER: str(attempt)}
        if secret is not None:
            # Signed afresh for every attempt, so a receiver's timestamp tolerance does not
            # reject a retry that comes minutes after the first try.
            sent.update(signed_headers(secret, int(time.time()), body))
        where = f"POST {public_url(target)}"
        try:
            async with self._open().post(
                target,
                data=body,
                headers=sent,
                timeout=aiohttp.ClientTimeout(total=policy.timeout_seconds),
                allow_redirects=False,
            ) as resp:
                response = Response(resp.status, resp.reason or "", resp.headers, await _read(resp))
        except aiohttp.ClientError as exc:
            refused = _refusal(exc)
            if refused is not None:
                raise DeliveryFailed(f"{where} refused: {refused}", retryable=False) from None
            return _Problem(f"{where} failed: {type(exc).__name__}: {exc}"), None
        except TimeoutError:
            return _Problem(f"{where} timed out after {policy.timeout_seconds:g}s"), None
        outcome = classify(response.status)
        if outcome is Outcome.DELIVERED:
            return None, response
        text = f"{where} answered {response.status} {response.reason}: {response.excerpt()!r}"
        extra = {"status": response.status, "body": response.excerpt()}
        if outcome is Outcome.REJECTED:
            raise DeliveryFailed(text, retryable=False, extra=extra)
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=datetime.now(UTC))
        return _Problem(text, retry_after, extra), None


@dataclass(frozen=True)
class _Problem:
    text: str
    retry_after: float | None = None
    extra: dict[str, Any] | None = None


async def _read(resp: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < MAX_RESPONSE_BYTES:
        chunk = await resp.content.read(MAX_RESPONSE_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _refusal(exc: BaseException) -> str | None:
    """The allow-list's refusal behind an aiohttp error, if that is what it is."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DestinationRefused):
            return str(seen)
        os_error = getattr(seen, "os_error", None)
        if isinstance(os_error, DestinationRefused):
            return str(os_error)
        seen = seen.__cause__ or seen.__context__
    return None
