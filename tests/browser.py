"""Debian's headless Chromium driven by Playwright, with the launch flags this machine needs, for the
tests of the pages: every request the page makes is checked by ``allow`` and aborted unless allowed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium_context(profile: Path, allow: Callable[[str], bool]) -> Iterator[BrowserContext]:
    """A persistent headless Chromium context whose requests go out only when ``allow(url)``."""
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed ({CHROMIUM}; Debian package: chromium)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 1500},
        )
        context.route("**/*", lambda route: route.continue_() if allow(route.request.url) else route.abort())
        try:
            yield context
        finally:
            context.close()


@dataclass
class OfflinePage:
    """A page that may load only ``file:`` URLs: every URL it asked for, and its console errors."""

    page: Page
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def stayed_offline(self) -> bool:
        return bool(self.requests) and all(url.startswith("file:") for url in self.requests)


@contextmanager
def offline_page(profile: Path, path: Path) -> Iterator[OfflinePage]:
    """``path`` opened in Chromium with every request but ``file:`` aborted, errors recorded."""
    requests: list[str] = []

    def local(url: str) -> bool:
        requests.append(url)
        return url.startswith("file:")

    with chromium_context(profile, local) as context:
        opened = OfflinePage(context.new_page(), requests)
        opened.page.on(
            "console", lambda message: opened.errors.append(message.text) if message.type == "error" else None
        )
        opened.page.on("pageerror", lambda error: opened.errors.append(str(error)))
        opened.page.goto(path.as_uri())
        yield opened
