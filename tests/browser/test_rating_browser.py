"""Rating model outputs in a real browser, by keyboard only: a reviewer marks one classification output
correct (C, Enter) and one wrong with the right label (W, 2, Enter), scores a generated response per criterion
(digits), rewrites it (E, Ctrl+Enter), and picks a response on the blind A/B page (1)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.people import make_user
from tests.fixtures.ratings import classification_world, generation_world
from training.models import Preference, Rating
from training.ratings.services import comparison_create

pytestmark = pytest.mark.browser


@pytest.fixture
def users(transactional_db) -> dict:
    return {role: make_user(role) for role in ("owner", "annotator", "reviewer", "outsider")}


def log_in(page: Page, username: str, next_url: str) -> None:
    page.goto(f"/accounts/login/?next={next_url}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-" + username)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{next_url}")  # "load": the deferred rating.js is running by then


def test_a_reviewer_rates_by_keyboard(page: Page, users, screenshot_dir):
    cls = classification_world(users)
    gen = generation_world(users)
    reviewer = users["reviewer"]
    log_in(page, "reviewer", f"/projects/{cls.project.pk}/ratings/runs/{cls.run.pk}/")
    workspace = page.locator("#rating-workspace")
    expect(workspace).to_contain_text("I love it")
    expect(page.locator("#rating-kind")).to_have_text("test split")
    expect(page.locator("#model-value")).to_have_text("positive")
    expect(page.locator("#model-confidence")).to_have_count(0)  # hidden unless the owner shows it

    page.keyboard.press("c")
    page.keyboard.press("Enter")
    expect(workspace).to_contain_text("I hate it")
    page.keyboard.press("w")
    page.keyboard.press("2")
    expect(page.locator('input[name="label"][value="negative"]')).to_be_checked()
    page.screenshot(path=str(screenshot_dir / "rating.png"), full_page=True)
    page.keyboard.press("Enter")
    expect(workspace).to_contain_text("What a day")
    expect(page.locator("#rating-kind")).to_have_text("unlabelled")
    stored = Rating.objects.filter(rater=reviewer).order_by("id").values_list("output_id", "verdict", "correction")
    assert list(stored) == [(cls.outputs[0].pk, "correct", None), (cls.outputs[1].pk, "wrong", {"label": "negative"})]

    page.goto(f"/projects/{gen.project.pk}/ratings/runs/{gen.run.pk}/")
    expect(page.locator("#model-response")).to_have_text("blue number 0")
    for digit in "453":  # the first criterion has the focus; each score moves on to the next criterion
        page.keyboard.press(digit)
    page.keyboard.press("e")
    expect(page.locator("#response")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("The sky is blue.")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#model-response")).to_have_text("blue number 1")
    rating = Rating.objects.get(rater=reviewer, output=gen.outputs[0])
    assert rating.scores == {"correct": 4, "helpful": 5, "follows the guidelines": 3}
    assert rating.correction == {"response": "The sky is blue."}

    comparison = comparison_create(project=gen.project, user=users["owner"], run_a=gen.run,
                                           run_b=gen.other_run)
    page.goto(f"/projects/{gen.project.pk}/ratings/comparisons/{comparison.pk}/")
    expect(page.locator("#response-1")).to_contain_text("number 0")
    expect(page.locator("#response-2")).to_contain_text("number 0")
    page.screenshot(path=str(screenshot_dir / "comparison.png"), full_page=True)
    shown_first = page.locator("#response-1 .item-text").inner_text()
    page.keyboard.press("1")
    expect(page.locator("#comparison-progress")).to_contain_text("1 of 3")
    preference = Preference.objects.get(rater=reviewer)
    assert preference.chosen.value["response"] == shown_first and not preference.tie
