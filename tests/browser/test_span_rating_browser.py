"""Rating a span run's outputs in a real browser, by keyboard only: the reviewer adds the place the model missed
(W, then the span editor's keys), marks one output correct (C, Enter), relabels a place the model called a person
(W, 2, Enter); the stored ratings carry the right spans. Then the run page shows the spans marked in the text.
Screenshots: docs/screenshots/span-rating.png and span-run-page.png when LABELLOOP_SCREENSHOTS points there."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_rating_browser import log_in
from tests.fixtures.people import make_user
from tests.fixtures.ratings import span_world
from training.models import Rating

pytestmark = pytest.mark.browser


def at(text: str, piece: str, label: str) -> dict:
    start = text.index(piece)
    return {"start": start, "end": start + len(piece), "label": label}


def editor_ready(page: Page, text: str) -> None:
    """The next output is in, and its (hidden) span editor has bound its keys."""
    expect(page.locator("#item-text")).to_contain_text(text)
    expect(page.locator("#span-text[data-ready]")).to_be_attached()


def test_a_reviewer_rates_and_corrects_spans_by_keyboard(page: Page, transactional_db, screenshot_dir):
    users = {role: make_user(role) for role in ("owner", "annotator", "reviewer", "outsider")}
    world = span_world(users)
    ada, grace, alan = (output.item.text for output in world.outputs)
    log_in(page, "reviewer", f"/projects/{world.project.pk}/ratings/runs/{world.run.pk}/")

    # Test item first: the model found the two people and missed London.
    editor_ready(page, "Ada Lovelace")
    expect(page.locator("#rating-kind")).to_have_text("test split")
    expect(page.locator("#model-spans li")).to_have_count(2)
    expect(page.locator("#model-spans")).to_contain_text("“Charles Babbage”")
    expect(page.locator("#span-fix")).to_be_hidden()
    page.screenshot(path=str(screenshot_dir / "span-rating-start.png"), full_page=True)
    page.keyboard.press("w")
    expect(page.locator("#span-fix")).to_be_visible()
    expect(page.locator("#span-text")).to_be_focused()
    expect(page.locator("#span-list li")).to_have_count(2)  # filled with the model's spans
    page.keyboard.press("End")  # "."
    page.keyboard.press("ArrowLeft")  # London
    page.keyboard.press("2")  # LOC
    expect(page.locator("#span-list")).to_contain_text("“London”")
    page.screenshot(path=str(screenshot_dir / "span-rating.png"), full_page=True)
    page.keyboard.press("Enter")

    editor_ready(page, "Grace Hopper")
    expect(page.locator("#rating-kind")).to_have_text("unlabelled")
    page.keyboard.press("c")
    page.keyboard.press("Enter")

    # "Manchester" tagged PER: W, the caret to it, LOC's key relabels the span.
    editor_ready(page, "Alan Turing")
    page.keyboard.press("w")
    expect(page.locator("#span-text")).to_be_focused()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("2")
    expect(page.locator("#span-message")).to_contain_text("from PER to LOC")
    page.keyboard.press("Enter")
    expect(page.locator("#done-title")).to_have_text("All rated")

    stored = Rating.objects.filter(rater=users["reviewer"]).order_by("id")
    assert [(r.output_id, r.verdict, r.correction) for r in stored] == [
        (world.outputs[0].pk, "wrong",
         {"spans": [at(ada, "Ada Lovelace", "PER"), at(ada, "Charles Babbage", "PER"), at(ada, "London", "LOC")]}),
        (world.outputs[1].pk, "correct", None),
        (world.outputs[2].pk, "wrong", {"spans": [at(alan, "Alan Turing", "PER"), at(alan, "Manchester", "LOC")]}),
    ]
    assert grace.startswith("Grace")

    # The run page: the outputs with their spans marked and labelled, entity F1 per label as the third chart
    # (until the run is evaluated, a note says where it will appear).
    page.goto(f"/projects/{world.project.pk}/runs/{world.run.pk}/")
    expect(page.locator("#chart-eval-empty")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "span-run-page-unevaluated.png"), full_page=True)
    world.run.metrics = {"test": {"n": 1, "f1": 0.8, "precision": 1.0, "recall": 0.67, "per_label": {
        "PER": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 2},
        "LOC": {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 1},
    }}}
    world.run.save(update_fields=["metrics"])
    page.goto(f"/projects/{world.project.pk}/runs/{world.run.pk}/")
    expect(page.locator("#span-outputs .seg.marked[data-tag]").first).to_be_visible()
    expect(page.locator("#chart-eval-empty")).to_be_hidden()
    page.screenshot(path=str(screenshot_dir / "span-run-page.png"), full_page=True)
