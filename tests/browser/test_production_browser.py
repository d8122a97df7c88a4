"""The main pages in a real browser on gunicorn with the production settings and collectstatic's manifest.

The browser is offline apart from the server under test: every script, stylesheet and the API docs'
Swagger UI must come from our own static files, and no request may fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.conftest import VIEWPORT
from tests.fixtures.production import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def prod_page(browser, production_server) -> Iterator:
    context = browser.new_context(base_url=production_server.url, viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(15_000)
    failures: list[str] = []
    page.on("requestfailed", lambda request: failures.append(request.url))
    page.on("response", lambda resp: resp.status >= 500 and failures.append(f"{resp.status} {resp.url}"))
    page.on("pageerror", lambda error: failures.append(f"script error: {error}"))
    # Anything not served by the server under test (a CDN) is refused, as it would be offline.
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(production_server.url)
               else route.abort())
    page.failures = failures
    yield page
    context.close()


def login(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def test_owner_pages_render_with_their_static_files(prod_page, production_server, screenshot_dir):
    login(prod_page, "owner")
    project = production_server.project_id
    for path in ("/", f"/projects/{project}/", f"/projects/{project}/settings/", f"/projects/{project}/quality/"):
        prod_page.goto(path)
        assert prod_page.evaluate("typeof window.htmx") == "object", path
        color = prod_page.evaluate("getComputedStyle(document.querySelector('.topbar')).backgroundColor")
        assert color not in ("rgba(0, 0, 0, 0)", ""), "app.css applied"
    prod_page.goto(f"/projects/{project}/")
    prod_page.screenshot(path=str(screenshot_dir / "production_project.png"), full_page=True)
    assert prod_page.failures == []


def test_api_docs_work_offline(prod_page, screenshot_dir):
    login(prod_page, "owner")
    prod_page.goto("/api/docs/")
    prod_page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    prod_page.screenshot(path=str(screenshot_dir / "production_api_docs.png"))
    prod_page.goto("/api/redoc/")
    prod_page.wait_for_selector(".menu-content", timeout=20_000)
    # ReDoc's bundle links its own "API docs by Redocly" badge from its CDN; offline it is a missing picture.
    assert [url for url in prod_page.failures if not url.startswith("https://cdn.redoc.ly/")] == []


def test_a_missing_page_is_a_styled_404(prod_page):
    login(prod_page, "annotator1")
    response = prod_page.goto("/projects/999999/")
    assert response.status == 404
    assert prod_page.locator("h1").inner_text() == "Not found"
