"""A small client of the REST API for the CLI.

aiohttp rather than httpx: it is already a dependency (the server is built on it), so the CLI
adds no HTTP stack of its own, and `watch` and `demo` poll several backfills concurrently,
which asyncio does without threads. Every failure becomes a `CliError` with one line that
says what went wrong, never a traceback."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from yarl import URL

from orchestrator.cli.errors import CliError, Exit, UsageError

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "BACKFILL_URL"
TOKEN_ENV = "BACKFILL_TOKEN"
TIMEOUT = aiohttp.ClientTimeout(total=60, connect=10)


def parse_base_url(text: str) -> URL:
    try:
        url = URL(text.strip())
    except ValueError as exc:
        raise UsageError(f"--url / {URL_ENV}: {text!r} is not a URL ({exc})") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise UsageError(
            f"--url / {URL_ENV}: {text!r} is not an http(s) URL; "
            f"expected something like {DEFAULT_URL}"
        )
    return url.with_path(url.path.rstrip("/") or "/").with_query(None).with_fragment(None)


def _problem_line(status: int, body: Any) -> str:
    if not isinstance(body, Mapping):
        return f"HTTP {status}"
    code = body.get("code") or body.get("error") or body.get("title") or ""
    detail = body.get("detail") or body.get("message") or ""
    line = f"HTTP {status} {code}: {detail}".rstrip(": ")
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        described = []
        for entry in errors[:3]:
            if isinstance(entry, Mapping):
                where = entry.get("pointer") or entry.get("parameter") or ""
                described.append(f"{where} {entry.get('message', '')}".strip())
        more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
        line += " [" + "; ".join(described) + more + "]"
    return line


class ApiError(CliError):
    """The server answered with an error status."""

    def __init__(self, message: str, code: Exit, status: int) -> None:
        super().__init__(message, code)
        self.status = status


class ApiClient:
    def __init__(self, session: aiohttp.ClientSession, base: URL) -> None:
        self._session = session
        self.base = base

    def url(self, path: str) -> URL:
        return self.base.with_path(self.base.path.rstrip("/") + path)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        url = self.url(path)
        try:
            async with self._session.request(method, url, json=json, params=params) as response:
                text = await response.text()
                body: Any = None
                if response.content_type.endswith("json") and text:
                    try:
                        body = await response.json(content_type=None)
                    except ValueError:
                        body = None
                status = response.status
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror or str(exc.os_error)
            raise CliError(
                f"cannot reach {self.base}: {reason.lower()} (is the service running? "
                f"set {URL_ENV} or --url)",
                Exit.UNREACHABLE,
            ) from None
        except TimeoutError:
            raise CliError(
                f"no answer from {self.base} within {TIMEOUT.total:g}s", Exit.UNREACHABLE
            ) from None
        except aiohttp.ClientError as exc:
            raise CliError(
                f"{self.base} did not answer as an HTTP server: {type(exc).__name__}: {exc}",
                Exit.UNREACHABLE,
            ) from None
        if status in (401, 403):
            hint = f" (check {TOKEN_ENV} or --token)" if status == 401 else ""
            raise ApiError(
                f"{method} {path}: {_problem_line(status, body)}{hint}", Exit.AUTH, status
            )
        if status >= 400:
            raise ApiError(f"{method} {path}: {_problem_line(status, body)}", Exit.ERROR, status)
        if status != 204 and body is None:
            raise CliError(
                f"{method} {url} answered {status} without JSON; is {self.base} the backfill API?",
                Exit.UNREACHABLE,
            )
        return body

    async def find(self, path: str) -> Any:
        """GET, or None when the answer is 404."""
        try:
            return await self.get(path)
        except CliError as exc:
            if isinstance(exc, ApiError) and exc.status == 404:
                return None
            raise

    async def get(self, path: str, **params: str) -> Any:
        return await self.request("GET", path, params=params or None)

    async def post(self, path: str, json: Any = None) -> Any:
        return await self.request("POST", path, json=json)


@asynccontextmanager
async def open_client(
    url: str | None, token: str | None, *, default_url: str = DEFAULT_URL
) -> AsyncIterator[ApiClient]:
    base = parse_base_url(url or os.environ.get(URL_ENV) or default_url)
    token = token or os.environ.get(TOKEN_ENV)
    if not token:
        raise CliError(
            f"no API key: set {TOKEN_ENV} or pass --token (`backfill keys create` makes one)",
            Exit.AUTH,
        )
    headers = {"Authorization": f"Bearer {token.strip()}", "User-Agent": "backfill-cli"}
    async with aiohttp.ClientSession(headers=headers, timeout=TIMEOUT) as session:
        yield ApiClient(session, base)


async def all_pages(client: ApiClient, path: str, **params: str) -> list[dict[str, Any]]:
    """Every item of a paged list (`data` + `next_after`)."""
    items: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        query = dict(params)
        if after is not None:
            query["after"] = after
        page = await client.get(path, **query)
        items.extend(page.get("data", []))
        nxt = page.get("next_after")
        if nxt is None:
            return items
        after = str(nxt)
