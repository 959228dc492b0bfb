"""The dashboard in a real browser against a real `backfill up`: Debian's chromium driven by
Playwright (never `playwright install`: the browser is the system's).

A team-1 key with every scope watches a slow backfill's bar advance, cancels it with the
button and sees it cancelled; a read-only key of the same team sees no buttons; a backfill of
another team never appears. Swagger UI at /docs renders under the same strict CSP.
Screenshots are left in tests/artifacts/ (not in git) for people to look at."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.test_backfill_up import (
    backfill_command,
    free_port,
    read_log,
    service_env,
    wait_ready,
)
from tests.helpers import api, make_target, start_backfill, wait_until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("BACKFILL_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))
CHROMIUM = os.environ.get("BACKFILL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "bfk_dashboard-bootstrap-token-0123456789abcdefgh"
TIMEOUT_MS = 30_000

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="Playwright for Python is not installed (the dev extra)"
)
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(
        f"{CHROMIUM} is missing: install Debian's chromium (make browser) to run the "
        "dashboard's browser test",
        allow_module_level=True,
    )


@dataclass(frozen=True)
class Service:
    url: str
    env: dict[str, str]


@pytest.fixture
async def service(database: str, prefix: str, tmp_path: Path) -> AsyncIterator[Service]:
    port = free_port()
    env = service_env(database, prefix, http_port=str(port), bootstrap_token=TOKEN)
    log_path = tmp_path / "backfill-up.log"
    with log_path.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *backfill_command(), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(base_url=url) as http:
            await wait_ready(http, proc)
        yield Service(url, env)
    except BaseException:
        print(f"----- backfill up log ({log_path}) -----\n{read_log(log_path)}")
        raise
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), timeout=30)


async def cli(service: Service, *args: str) -> str:
    """A `backfill` subcommand against the service's database; its stdout."""
    proc = await asyncio.create_subprocess_exec(
        backfill_command()[0], *args, cwd=ROOT, env=service.env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


def session(service: Service, token: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(base_url=service.url, headers={"Authorization": f"Bearer {token}"})


async def slow_backfill(http: aiohttp.ClientSession, name: str) -> dict[str, Any]:
    """365 daily windows of 0.1 s each, one at a time: about 40 s, long enough to watch."""
    await make_target(
        http, name, max_active_runs=1,
        handler={"type": "sql", "options": {"statement": "SELECT pg_sleep(0.1)"}},
    )  # fmt: skip
    return await start_backfill(http, name, start="2023-01-01", end="2023-12-31")  # type: ignore[no-any-return]


class Browser:
    """One Chromium; pages collect console errors so a CSP violation fails the test."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.errors: list[str] = []

    async def page(self) -> Any:
        context = await self.browser.new_context(viewport={"width": 1400, "height": 900})
        page = await context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        return page

    def _console(self, message: Any) -> None:
        # A 404 the page asked for on purpose (another team's backfill) is not a fault.
        if message.type == "error" and "status of 404" not in message.text:
            self.errors.append(message.text)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with playwright_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield Browser(chromium)
        finally:
            await chromium.close()


async def sign_in(page: Any, service: Service, token: str) -> None:
    # `/` sends a browser to the dashboard.
    await page.goto(f"{service.url}/")
    assert page.url == f"{service.url}/ui/"
    await page.fill("#key-input", token)
    await page.click("#key-form button[type=submit]")
    await page.wait_for_selector("#list-view:not([hidden])")


async def fraction_of(page: Any, backfill_id: int) -> float:
    bar = page.locator(f'tr[data-backfill-id="{backfill_id}"] [role=progressbar]')
    value = await bar.get_attribute("aria-valuenow")
    return float(value) if value is not None else 0.0


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


async def test_dashboard_shows_progress_cancels_and_hides_what_it_must_and_docs_render(
    service: Service, browser: Browser
) -> None:
    read_token, team_line = await asyncio.gather(
        cli(service, "keys", "create", "--team", "1", "--scope", "read"),
        cli(service, "teams", "create", "other"),
    )
    other_team = team_line.split("\t")[0]
    # The operator grants the other team the source too: what hides its backfill from team 1
    # is the API's team scoping, not a missing grant.
    await cli(service, "sources", "grant", "main", "--team", other_team, "--sql")
    other_token = await cli(
        service, "keys", "create", "--team", other_team, "--scope", "read,write"
    )
    async with session(service, TOKEN) as mine, session(service, other_token) as theirs:
        watched = await slow_backfill(mine, "slow")
        hidden = await slow_backfill(theirs, "their-slow")
        ids = {watched["id"], hidden["id"]}
        assert len(ids) == 2

        page = await browser.page()
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await sign_in(page, service, TOKEN)
        row = page.locator(f'tr[data-backfill-id="{watched["id"]}"]')
        await row.wait_for()

        # The bar advances by itself (the page polls; nobody reloads it).
        async def moved_from(start: float) -> bool:
            return await fraction_of(page, watched["id"]) > start

        await wait_until(lambda: moved_from(0.0), within=30, what="the bar to show some progress")
        first = await fraction_of(page, watched["id"])
        await wait_until(lambda: moved_from(first), within=30, what="the bar to advance")
        assert await row.locator(".rate").inner_text() != "—"
        assert "runs/min" in await row.locator(".rate").inner_text()
        await page.screenshot(path=screenshot_path("dashboard-running.png"))

        # Another team's backfill never appears.
        shown = await page.locator("tr[data-backfill-id]").evaluate_all(
            "rows => rows.map(r => Number(r.dataset.backfillId))"
        )
        assert shown == [watched["id"]]

        await row.locator('button[data-action="cancel"]').click()
        await row.locator('.state[data-state="cancelled"]').wait_for()
        assert (await api(mine, "GET", f"/v1/backfills/{watched['id']}", 200))[
            "state"
        ] == "cancelled"
        # Nothing to do with a cancelled backfill: its buttons are gone.
        assert await row.locator("button[data-action]").count() == 0
        path = screenshot_path("dashboard-cancelled.png")
        await page.screenshot(path=path)
        print(f"dashboard screenshots: {path.parent}")

        # A read-only key of the same team sees the backfills and no buttons, in the list
        # and in the detail view.
        await api(theirs, "POST", f"/v1/backfills/{hidden['id']}/cancel", 200)
        second = await slow_backfill(mine, "slow-2")
        reader = await browser.page()
        await sign_in(reader, service, read_token)
        await reader.locator(f'tr[data-backfill-id="{second["id"]}"]').wait_for()
        assert "read" in await reader.locator("#who-text").inner_text()
        assert await reader.locator("button[data-action]").count() == 0
        await reader.goto(f"{service.url}/ui/#/backfills/{second['id']}")
        await reader.locator("#detail-view:not([hidden]) #run-rows tr").first.wait_for()
        assert await reader.locator("button[data-action]").count() == 0
        await reader.screenshot(path=screenshot_path("dashboard-read-only-detail.png"))
        # ... and another team's backfill is not found by id either.
        await reader.goto(f"{service.url}/ui/#/backfills/{hidden['id']}")
        await wait_until(
            lambda: reader.locator("#message").inner_text(),
            within=10,
            what="the detail view to say the backfill is not there",
        )
        assert "No such backfill" in await reader.locator("#message").inner_text()
        await api(mine, "POST", f"/v1/backfills/{second['id']}/cancel", 200)

    # One service for both pages: starting one is the slow part of this test.
    await check_swagger_ui(service, browser)
    assert browser.errors == [], browser.errors


async def check_swagger_ui(service: Service, browser: Browser) -> None:
    """Swagger UI renders offline under the same strict CSP, with bearer auth."""
    page = await browser.page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    response = await page.goto(f"{service.url}/docs")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    await page.locator(".opblock").first.wait_for()
    assert await page.locator(".opblock").count() >= 20
    # Authorize with a key, then try a request: it goes out with the bearer header.
    await page.locator("button.authorize").first.click()
    await page.locator(".modal-ux input").first.fill(TOKEN)
    await page.locator(".modal-ux button.authorize").click()
    await page.locator(".modal-ux button.btn-done").click()
    whoami = page.locator("#operations-keys-whoami")
    await whoami.locator(".opblock-summary").click()
    # tryItOutEnabled: the form is open already, no "Try it out" click needed.
    await whoami.locator("button.execute").click()
    status = whoami.locator(".live-responses-table tbody .response-col_status").first
    await status.wait_for()
    assert (await status.inner_text()).strip() == "200"
    assert '"team_id": 1' in await whoami.locator(".live-responses-table").inner_text()
    await page.screenshot(path=screenshot_path("docs-swagger-ui.png"), full_page=False)
    # Everything came from this server: it works with no network beyond it.
    assert all(url.startswith((service.url, "data:")) for url in requested), requested
