"""A real browser for tests: Debian's `chromium`, driven by Playwright's async API.

Playwright's own browser downloads are never used (no `playwright install`): the system's chromium is
launched by path, headless, with nothing that phones home (no background networking, component updates,
sync or first-run pages), so a test sees exactly the requests its page makes.

`chromium_browser()` launches one and closes it; the `browser` fixture wraps it per test (Playwright's
objects belong to the event loop that made them, and each test has its own). `watch(page, origin)`
records what a person would call broken: console errors, uncaught exceptions, Content-Security-Policy
violations (the `securitypolicyviolation` event, reported from inside the page), requests to any other
origin, and dialogs (an `alert()` a hostile name managed to run). `screenshot` saves a full-page PNG in
the test's own folder and a copy under `test-output/screenshots/` at the repository root (git-ignored)
for a person to look at after the run.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, ConsoleMessage, Dialog, Error, Page, Request, async_playwright

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync")
TIMEOUT_MS = 10_000  # any single step: a page that takes longer is broken, and a failure should come fast

# Runs in every document before its own scripts (Playwright injects it through the DevTools protocol,
# which the page's CSP does not govern) and hands each violation to the test through a binding.
_REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolation({directive: event.violatedDirective, blocked: event.blockedURI,
                         sample: event.sample, source: event.sourceFile, line: event.lineNumber});
});
"""


def chromium_path() -> str:
    """The system's chromium (or $CHROMIUM); the test fails, rather than skips, when there is none."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if path is None:
        pytest.fail("no chromium on PATH: install Debian's package (apt-get install chromium) or set $CHROMIUM")
    return path


@asynccontextmanager
async def chromium_browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_FLAGS))
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium_browser() as launched:
        yield launched


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Watch:
    """What went wrong on one page while it was watched (see the module docstring)."""

    origin: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    def on_page_error(self, error: Error) -> None:
        self.page_errors.append(str(error))

    def on_violation(self, _source: Any, report: dict[str, Any]) -> None:
        self.violations.append(report)

    def on_request(self, request: Request) -> None:
        self.requests.append(request.url)
        if not request.url.startswith(("data:", "about:", "blob:")) and origin_of(request.url) != self.origin:
            self.foreign_requests.append(request.url)

    async def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    def problems(self) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {"console errors": self.console_errors, "uncaught exceptions": self.page_errors,
                 "CSP violations": self.violations, "requests to another origin": self.foreign_requests,
                 "dialogs": self.dialogs}
        return {what: items for what, items in found.items() if items}

    def assert_clean(self) -> None:
        assert not self.problems(), f"the page misbehaved: {self.problems()}"


async def watch(page: Page, origin: str) -> Watch:
    """Start watching `page` (before its first navigation) for errors, violations and foreign requests."""
    watched = Watch(origin)
    page.on("console", watched.on_console)
    page.on("pageerror", watched.on_page_error)
    page.on("request", watched.on_request)
    page.on("dialog", watched.on_dialog)
    await page.expose_binding("__cspViolation", watched.on_violation)
    await page.add_init_script(_REPORT_VIOLATIONS)
    page.set_default_timeout(TIMEOUT_MS)
    return watched


async def screenshot(page: Page, folder: Path, test_name: str, name: str) -> Path:
    """A full-page PNG in `folder` (the test's tmp_path), copied to test-output/screenshots/."""
    slug = re.sub(r"[^A-Za-z0-9_.]+", "-", f"{test_name}-{name}").strip("-")
    path = folder / f"{slug}.png"
    await page.screenshot(path=str(path), full_page=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, SCREENSHOTS / path.name)
    return path
