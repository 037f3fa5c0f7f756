"""Browser fixtures: Debian's chromium driven by Playwright, never a downloaded browser.

Each test page records console errors and uncaught exceptions; a test whose page logged one
fails at teardown. A screenshot of every page a test ends on is kept under
``test-artifacts/ui/`` (or ``$OPSLOOP_TEST_ARTIFACTS/ui``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("OPSLOOP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = (
    Path(os.environ.get("OPSLOOP_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))
    / "ui"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            "Debian's chromium is not installed (./dev test installs it: apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        yield launched
        launched.close()


@dataclass
class BrowserPage:
    """A Playwright page plus what its console said."""

    page: Any
    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow_console(self, pattern: str) -> None:
        """Accept console errors matching ``pattern`` (e.g. the 404 a 404-page test asks for)."""
        self.allowed.append(re.compile(pattern))

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@pytest.fixture
def ui(browser: Any, request: pytest.FixtureRequest) -> Iterator[BrowserPage]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    recorded = BrowserPage(page)
    page.on(
        "console",
        lambda message: (
            recorded.errors.append(f"console {message.type}: {message.text}")
            if message.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda error: recorded.errors.append(f"uncaught: {error}"))
    yield recorded
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    if page.url.startswith("http"):
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()
    assert not recorded.unexpected_errors(), "the browser console reported errors"
