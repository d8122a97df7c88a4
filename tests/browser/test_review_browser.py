"""A reviewer works through the review queue in a real browser (Debian chromium through Playwright), keyboard only.

The review page speaks the annotate page's keys: a label's hotkey picks that label as the final label and Enter
saves it; A and B accept the first or second annotator's answer. The queue lists each item's text and why it is
there, filters by reason, and accepts agreed audit items together after a confirmation that says how many.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from annotation.annotate import services as ann_svc
from annotation.models import (
    Decision,
    DecisionSource,
    Item,
    ItemStatus,
    Project,
    ReviewStatus,
    ReviewTask,
    Role,
)
from annotation.projects.services import membership_set, project_create
from tests.fixtures.people import acknowledge_guidelines, add_items, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LABELS = ["positive", "negative", "neutral"]  # hotkeys 1, 2, 3 on both pages

TEXTS = [
    ("Oh great, another Monday. Just what I needed after a week of rain.", "positive", "negative"),
    ("The soup was cold, but the waiter apologised and brought a fresh bowl.", "negative", "neutral"),
    ("Does the 220 V model ship to Portugal?", "neutral", "neutral"),
    ("Best concert I have been to in years, the crowd sang every word.", "positive", "positive"),
    ("Package arrived on Tuesday.", "neutral", "neutral"),
]


def log_in(page: Page, username: str, path: str) -> None:
    page.goto(reverse("login") + f"?next={path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"pw-{username}")
    page.click("button[type=submit]")
    page.wait_for_url(f"**{path}")


@pytest.fixture
def world():
    owner, ann1, ann2, reviewer = (make_user(n) for n in ("owner", "ann1", "ann2", "reviewer"))
    project = project_create(owner=owner, name="Sentiment", labels=LABELS, guidelines="Pick the writer's feeling.")
    Project.objects.filter(pk=project.pk).update(audit_rate=0.0, review_all=True)  # every agreement is audited
    project.refresh_from_db()
    for user, role in ((ann1, Role.ANNOTATOR), (ann2, Role.ANNOTATOR), (reviewer, Role.REVIEWER)):
        membership_set(project=project, user=user, role=role)
    add_items(project, [text for text, _, _ in TEXTS])
    acknowledge_guidelines(project, ann1, ann2)
    for _, first, second in TEXTS:
        for user, label in ((ann1, first), (ann2, second)):
            item = ann_svc.claim_next(annotator=user, project=project).item
            ann_svc.annotation_submit(annotator=user, item=item, value={"label": label}, label_names=LABELS)
    return project, reviewer


def final(text: str) -> Decision:
    return Decision.objects.filter(item__text=text).latest("created_at", "id")


def test_reviewer_works_the_queue_with_the_keyboard_only(page: Page, world, screenshot_dir):
    project, reviewer = world
    first, second = (ReviewTask.objects.get(item__text=text) for text, _, _ in TEXTS[:2])
    # opened by its link (as a click on the list's "Item" pushes it), so the address names the task being decided
    log_in(page, "reviewer", reverse("review-queue", args=[project.pk]))
    page.goto(reverse("review-queue", args=[project.pk]) + f"?task={first.pk}")
    panel = page.locator("#review-panel")
    expect(panel).to_contain_text("Annotators disagree")
    expect(panel).to_contain_text(TEXTS[0][0])
    expect(page.locator("#review-keys")).to_contain_text("A accept A")
    expect(page.locator("#review-filters")).to_contain_text("disagreement 2")
    expect(page.locator("#review-filters")).to_contain_text("audit 3")
    expect(page.locator(".review-entries")).to_contain_text("The soup was cold")  # text in the queue, not ids
    expect(page.locator("#review-progress")).to_contain_text("You reviewed 0 today · 5 open")
    page.screenshot(path=str(screenshot_dir / "review.png"), full_page=True)

    # 1. The annotate page's hotkey: 2 is "negative" there and here; Enter saves it as the final label.
    page.keyboard.press("2")
    expect(page.locator("input[name=label][value=negative]")).to_be_checked()
    page.keyboard.press("Enter")
    expect(panel).to_contain_text("Saved: negative is the final label.")
    decision = final(TEXTS[0][0])
    assert decision.value == {"label": "negative"} and decision.source == DecisionSource.REVIEWER
    assert decision.reviewer == reviewer

    # The address follows the task shown: a reload opens it, not the decided one (a tester was shown "already
    # closed" and no task, with no key to go on)
    expect(panel).to_contain_text(TEXTS[1][0])
    assert f"task={second.pk}" in page.url and f"task={first.pk}" not in page.url
    page.reload()
    expect(panel).to_contain_text(TEXTS[1][0])
    expect(page.locator("#review-unavailable")).to_have_count(0)
    # a link to the decided task says so and offers the next one under N
    page.goto(reverse("review-queue", args=[project.pk]) + f"?task={first.pk}")
    expect(page.locator("#review-unavailable")).to_contain_text("already closed (decided by you)")
    page.keyboard.press("n")
    expect(panel).to_contain_text(TEXTS[1][0])

    # 2. Filtered to the disagreements, B accepts the second annotator's answer on the last one.
    page.locator('#review-filters a[data-reason="disagreement"]').focus()
    page.keyboard.press("Enter")
    expect(page.locator('#review-filters a[data-reason="disagreement"]')).to_have_attribute("aria-current", "true")
    expect(panel).to_contain_text(TEXTS[1][0])
    page.keyboard.press("b")  # at once: the keys work the moment the next task shows
    expect(panel).to_contain_text("Accepted: neutral is the final label.")
    assert final(TEXTS[1][0]).value == {"label": "neutral"}
    expect(page.locator("#review-progress")).to_contain_text("You reviewed 2 today · 3 open")
    # the filter ran empty while other tasks wait: the page says so (not "Nothing waits"), keeps the filter's chip,
    # and N shows them all
    expect(page.locator("#review-empty")).to_contain_text(
        "No open task with the reason “disagreement” is left; 3 other tasks wait in the queue."
    )
    expect(page.locator('#review-filters a[data-reason="disagreement"]')).to_contain_text("disagreement 0")
    page.screenshot(path=str(screenshot_dir / "review_filter_empty.png"), full_page=True)
    page.keyboard.press("n")
    expect(panel).to_contain_text(TEXTS[2][0])
    assert "reason=" not in page.url

    # 3. Filter the queue to the audit samples, tick them all and accept them after the confirmation.
    page.locator('#review-filters a[data-reason="audit"]').focus()
    page.keyboard.press("Enter")
    expect(page.locator('#review-filters a[data-reason="audit"]')).to_have_attribute("aria-current", "true")
    expect(page.locator(".review-entries li")).to_have_count(3)
    assert "reason=audit" in page.url
    page.locator("#bulk-all").focus()
    page.keyboard.press("Space")
    expect(page.locator("input.bulk-pick:checked")).to_have_count(3)
    page.screenshot(path=str(screenshot_dir / "review_queue.png"), full_page=True)
    page.locator("#bulk-accept").focus()
    page.keyboard.press("Enter")
    confirm = page.locator("#bulk-confirm")
    expect(confirm).to_contain_text("Accept 3 audit items?")
    expect(confirm).to_contain_text("2 items → neutral")
    expect(confirm).to_contain_text("1 item → positive")
    assert not Decision.objects.filter(source=DecisionSource.REVIEWER, item__text=TEXTS[2][0]).exists()
    page.screenshot(path=str(screenshot_dir / "review_bulk_confirm.png"), full_page=True)
    page.locator("#bulk-confirm-button").focus()
    page.keyboard.press("Enter")
    expect(panel).to_contain_text("Accepted 3 audit items.")
    expect(page.locator("#review-empty")).to_be_visible()
    for text, agreed, _ in TEXTS[2:]:
        decision = final(text)
        assert decision.value == {"label": agreed} and decision.source == DecisionSource.REVIEWER
    assert set(ReviewTask.objects.values_list("status", flat=True)) == {ReviewStatus.DONE}
    assert Item.objects.filter(project=project, status=ItemStatus.APPROVED).count() == len(TEXTS)

    # The history page shows both annotations and the decision.
    item = Item.objects.get(text=TEXTS[0][0])
    page.goto(reverse("item-history", args=[project.pk, item.pk]))
    assert page.inner_text("#final-value") == "negative"
    assert page.locator("tr.event-annotation").count() == 2
    assert page.locator("tr.event-decision").count() == 1


def test_back_after_a_decision_shows_the_queue_as_it_is_now(page: Page, world, screenshot_dir):
    # A tester pressed N, decided, pressed Back, and was shown htmx's snapshot of the queue from before: the decided
    # task still open and the old counts (clicking it said "already closed"). Back now asks the server again.
    project, _reviewer = world
    queue_url = reverse("review-queue", args=[project.pk])
    log_in(page, "reviewer", queue_url)
    expect(page.locator("#review-progress")).to_contain_text("You reviewed 0 today · 5 open")
    page.keyboard.press("n")
    expect(page).to_have_url(re.compile(r"task=\d+"))
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#review-panel")).to_contain_text("Saved: negative is the final label.")
    expect(page.locator("#review-progress")).to_contain_text("You reviewed 1 today · 4 open")
    page.go_back()
    expect(page.locator("#review-progress")).to_contain_text("You reviewed 1 today · 4 open")
    page.screenshot(path=str(screenshot_dir / "review_after_back.png"), full_page=True)
