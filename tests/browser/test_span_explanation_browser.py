"""A span run's "Why?" in a real browser: a reviewer goes from the run page's outputs to an output's explanation,
asks for it, and the page (polling) shows the spans marked and, per span, the words that made the model find it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_explanation_browser import drain, fresh, log_in  # noqa: F401
from tests.training.explanations.test_span_explanations import span_output, tiny_span_artifact, users  # noqa: F401
from training.models import Explanation

pytestmark = pytest.mark.browser


def test_a_reviewer_explains_the_spans_of_a_span_run_output(
    page: Page, fresh, span_output, screenshot_dir  # noqa: F811
):
    run = span_output.run
    run.project.show_model_confidence = True
    run.project.save(update_fields=["show_model_confidence"])
    log_in(page, "reviewer", f"/projects/{run.project_id}/runs/{run.pk}/")
    link = page.locator(f'a.explain-link[href$="/outputs/{span_output.pk}/explanation/"]')
    expect(link).to_have_text("Why?")
    link.click()
    expect(page.locator("#span-count")).to_have_text("2")
    page.locator("#explain-button").click()
    expect(page.locator("#explain-state")).to_contain_text("Queued")
    drain()
    assert Explanation.objects.get().status == "succeeded"
    expect(page.locator("#marked-text mark.span-mark")).to_have_count(2, timeout=15_000)  # swapped in by the poll
    first, second = page.locator("details.span-why").all()
    expect(first.locator(".w.in-span")).to_have_text("alice")
    expect(first.locator(".top-words tbody tr").first).to_be_visible()
    expect(second.locator(".top-words")).to_be_hidden()  # closed until asked for
    second.locator("summary").click()
    expect(second.locator(".w.in-span")).to_have_text("paris")
    title = second.locator(".w", has_text="paris").get_attribute("title") or ""
    assert "log-odds" in title and "LOC for “paris”" in title
    second.locator("summary").click()  # the screenshot shows one span open, as the page starts
    page.screenshot(path=str(screenshot_dir / "explanation_spans.png"), full_page=True)
