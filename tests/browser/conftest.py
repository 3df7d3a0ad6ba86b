"""Browser tests: the real service (`flowlang serve` on a free loopback port) and the fake
vendor, driven by Debian's Chromium through Playwright, with the network closed.

Every page a test opens is watched: a JavaScript error, a console error (but the service's own
4xx answers, which the pages show as refusals), or any request to a host other than the
service's fails the test. `shoot(page, name)` writes <name>.png to out/screenshots/, or to the
folder FLOWLANG_SCREENSHOTS names (`make screenshots` refreshes docs/screenshots/ so).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Route,
    expect,
    sync_playwright,
)

from tests.browser.service import Running, start_service
from tests.fake_vendor import FakeVendor
from tests.requirements import CHROMIUM, require_chromium

# The machine the suite runs on may be busy: an assertion waits up to 10 s for the page (a
# passing one returns as soon as it holds).
expect.set_options(timeout=10_000)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("FLOWLANG_SCREENSHOTS") or ROOT / "out" / "screenshots")
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
# Chromium logs an API refusal the page handles (409 blocked reply, 422 wrap-up required) as a
# console error "Failed to load resource: the server responded with a status of 4xx".
REFUSAL_LOG = "Failed to load resource: the server responded with a status of 4"


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, for this package's tests only: Playwright's sync API runs
    an event loop in the main thread while it is open, which later tests' `asyncio.run` would
    trip on. Missing, the test skips (fails under CI=true: `make test` installs it,
    scripts/ensure-system-packages)."""
    require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def service(tmp_path: Path, fake_vendor: FakeVendor) -> Iterator[Running]:
    """The service for tests/browser/service.py's flow, on a fresh store."""
    running = start_service(tmp_path, fake_vendor)
    yield running
    running.client.close()
    running.process.stop()


class Problems:
    """What went wrong in the pages of one test."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def watch(self, context: BrowserContext) -> None:
        context.route("**/*", self._route)
        context.on("page", self._page)

    def _route(self, route: Route) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
            route.continue_()
            return
        self.found.append(f"request to a non-local host: {route.request.url}")
        route.abort()

    def _page(self, page: Page) -> None:
        page.on("console", self._console)
        page.on(
            "pageerror", lambda error: self.found.append(f"JavaScript error: {error} {error.stack}")
        )

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        local = (urlsplit(message.location.get("url", "")).hostname or "") in LOCAL_HOSTS
        if message.text.startswith(REFUSAL_LOG) and local:
            return
        self.found.append(f"console error: {message.text} at {message.location}")


@pytest.fixture
def problems() -> Problems:
    return Problems()


@pytest.fixture
def new_context(browser: Browser, problems: Problems) -> Iterator[Callable[..., BrowserContext]]:
    """Opens browser contexts (each its own cookies: one per user), watched by `problems`;
    the test fails at the end on anything `problems` found."""
    opened: list[BrowserContext] = []

    def open_context(width: int = 1280, height: int = 800) -> BrowserContext:
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(10_000)
        problems.watch(context)
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()
    assert not problems.found, "\n".join(problems.found)


@pytest.fixture
def shoot() -> Callable[[Page, str], Path]:
    """Writes a screenshot of the page to SCREENSHOTS/<name>.png."""

    def take(page: Page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return take
