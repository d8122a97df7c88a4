"""The owner plans and starts the next round in a real browser (Debian chromium through Playwright).

The plan page refreshes its preview when an option changes (htmx) and changes nothing until the button;
starting the round lands on the rounds page, whose charts and "made things worse" sentence are drawn.
Screenshots: docs/screenshots/round_plan.png and rounds.png when LABELLOOP_SCREENSHOTS points there.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation.models import Decision, DecisionSource, Item, ReviewTask, Role
from annotation.projects.services import membership_set, project_create
from tests.fixtures.people import add_items, make_user
from tests.fixtures.rounds import approve, output_row, rating_row, run_row
from training.models import Round, Verdict

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEXTS = [
    "The plot dragged but the acting was lovely",
    "Worst service I have had in years",
    "It arrived on Tuesday",
    "Great value, would buy again",
    "Not sure how I feel about the ending",
    "The battery died after two days",
    "Fine, nothing special",
    "Absolutely wonderful staff",
    "Terrible, terrible, terrible",
    "The box was blue",
    "I laughed, I cried, I want a refund",
    "Decent for the price",
]


def login(page, username: str) -> None:
    page.goto(reverse("login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw-" + username)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_owner_previews_the_plan_starts_the_next_round_and_reads_the_rounds(page, screenshot_dir):
    owner, reviewer = make_user("owner"), make_user("rita")
    project = project_create(
        owner=owner, name="Reviews", labels=["positive", "negative", "neutral"], guidelines="Pick the writer's feeling."
    )
    membership_set(project=project, user=reviewer, role=Role.REVIEWER)
    add_items(project, TEXTS)
    items = list(Item.objects.filter(project=project).order_by("pk"))
    for item, label in zip(items[:4], ["positive", "negative", "neutral", "positive"], strict=True):
        approve(item, {"label": label})
    # Two closed rounds before this one, the second worse on macro-F1.
    now = timezone.now()
    for number, (f1, alpha, noise, rated) in enumerate([(0.74, 0.61, 0.12, 0.70), (0.81, 0.68, 0.09, 0.78)], 1):
        Round.objects.create(
            project=project,
            number=number,
            closed_at=now,
            closed_by=owner,
            figures={
                "metric_name": "macro_f1",
                "main_metric": f1,
                "agreement": alpha,
                "noise_rate": noise,
                "rating": rated,
                "rating_name": "rated correct",
                "ratings_n": 40,
                "items_labelled": 100 * number,
            },
            changes={
                "correction": 3 * number,
                "example": 0,
                "review_model": 2,
                "review_rating": 1,
                "queued": 200,
                "queued_random": 40,
            },
            plan={"queue_order_used": "entropy"},
        )
    Round.objects.create(project=project, number=3)
    run = run_row(project, owner, metrics={"test": {"macro_f1": 0.77}})
    output_row(run, items[0], probabilities={"negative": 0.94, "positive": 0.04, "neutral": 0.02})
    output_row(run, items[1], probabilities={"negative": 0.9, "positive": 0.05, "neutral": 0.05})
    probabilities = [(0.4, 0.35, 0.25), (0.9, 0.05, 0.05), (0.5, 0.45, 0.05), (0.34, 0.33, 0.33), (0.6, 0.3, 0.1)]
    for item, (a, b, c) in zip(items[4:9], probabilities, strict=True):
        output_row(run, item, probabilities={"positive": a, "negative": b, "neutral": c})
    wrong = items[5]
    for item in items[6:9]:
        rating_row(item.model_outputs.get(run=run), reviewer, verdict=Verdict.CORRECT)
    rating_row(wrong.model_outputs.get(run=run), reviewer, verdict=Verdict.WRONG, correction={"label": "negative"})

    login(page, "owner")
    page.goto(reverse("round-plan", args=[project.pk]))
    assert page.locator("#plan-corrections").inner_text() == "1"
    assert page.locator("#plan-label-errors").inner_text() == "1"
    # Changing an option refreshes the preview without leaving the page, and changes nothing.
    with page.expect_response(lambda r: "/rounds/plan/" in r.url):
        page.select_option("#plan-order", "margin")
    page.wait_for_function("document.querySelector('#plan-queue').parentElement.textContent.includes('margin')")
    with page.expect_response(lambda r: "/rounds/plan/" in r.url):
        page.check("#plan-prelabels")
    page.wait_for_function("document.querySelector('#plan-prelabels-count').textContent.trim() !== 'off'")
    assert not Decision.objects.filter(source=DecisionSource.MODEL_CORRECTED).exists()
    page.screenshot(path=str(screenshot_dir / "round_plan.png"), full_page=True)

    page.click("#start-round")
    assert "Closing round" in page.inner_text("#round-confirm")
    page.click("#confirm-start-round")
    page.wait_for_url(f"**{reverse('round-list', args=[project.pk])}")
    assert Decision.objects.filter(item=wrong, source=DecisionSource.MODEL_CORRECTED).exists()
    assert ReviewTask.objects.filter(item=items[0]).exists()
    assert "Round 3 made macro-F1 worse: 0.81 → 0.77" in page.content()
    page.wait_for_function("document.querySelector('#chart-round-metric').width > 0")
    page.wait_for_timeout(300)
    page.screenshot(path=str(screenshot_dir / "rounds.png"), full_page=True)
