"""Browser tests: Playwright's sync API drives Debian's chromium against pytest-django's live_server.

They skip, saying why, where /usr/bin/chromium is missing. Screenshots go to a temporary folder, or to
the folder named by LABELLOOP_SCREENSHOTS (docs/screenshots to refresh the ones in the repository).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1360, "height": 860}

# Playwright's sync API runs an asyncio event loop in the test's thread; the test body's ORM calls are
# still plain synchronous code, which Django would otherwise refuse inside a running loop.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


# Module scope, not session: Playwright's sync API allows one running instance per thread, so each
# test module's browser is closed before the next module (which may start its own) runs.
@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server) -> Iterator:
    context = browser.new_context(base_url=live_server.url, viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def screenshot_dir(tmp_path) -> Path:
    target = os.environ.get("LABELLOOP_SCREENSHOTS")
    folder = Path(target) if target else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder
