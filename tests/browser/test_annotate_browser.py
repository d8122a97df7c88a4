"""The annotate loop in a real browser, by keyboard: log in, acknowledge the guidelines, label items
with digit + Enter, and watch progress advance; autosave, unsure, skip and undo by their keys; an
instruction response edited and sent with Ctrl+Enter."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from annotation.models import Annotation, AnnotationStatus, Claim, ClaimStatus, Draft, Role, TaskType
from annotation.projects.services import membership_set, project_create
from tests.fixtures.people import acknowledge_guidelines, add_items, make_user

pytestmark = pytest.mark.browser

GUIDELINES = """# Sentiment

Pick the feeling the **writer** expresses.

- *positive*: praise, thanks, delight.
- *negative*: complaints, anger, disappointment.
- *neutral*: facts, questions, mixed or no feeling.

Sarcasm counts as the feeling meant, not the words used.
"""
REVIEWS = [
    "The delivery was two days early and the packaging was lovely. Thank you!",
    "Stopped working after a week and support never answered my emails.",
    "Does this model come in a 220 V version?",
    "Great, another update that moves every button. Just what I needed.",
    "Battery life is fine. Screen is a little dim outdoors.",
]


@pytest.fixture
def sentiment(transactional_db):
    owner = make_user("owner")
    annotator = make_user("annotator1")
    project = project_create(
        owner=owner,
        name="Product reviews",
        labels=["positive", "negative", "neutral"],
        overlap=1,
        guidelines=GUIDELINES,
    )
    membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
    add_items(project, REVIEWS)
    return project, annotator


def wait_until(find: Callable, timeout: float = 10.0):
    """Poll the database for what the page saved in the background (the autosave has no visible end).

    On SQLite the test database is shared in memory with the live server's thread, whose writes lock a table for
    this reader ("database table is locked", not a busy wait): such a read is tried again, like an empty one."""
    from django.db import OperationalError

    deadline = time.monotonic() + timeout
    while True:
        try:
            found = find()
        except OperationalError as exc:
            if "locked" not in str(exc):
                raise
            found = None
        if found is not None:
            return found
        assert time.monotonic() < deadline, "the page never saved it"
        time.sleep(0.1)


def log_in(page: Page, username: str, next_url: str) -> None:
    page.goto(f"/accounts/login/?next={next_url}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-" + username)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{next_url}")  # waits for "load": the deferred annotate.js is running by then


def test_label_three_items_by_keyboard(page: Page, sentiment, screenshot_dir):
    project, annotator = sentiment
    log_in(page, "annotator1", f"/projects/{project.pk}/annotate/")

    expect(page.locator("#ack-panel")).to_contain_text("Read the guidelines before you start")
    with page.expect_navigation():  # to the same URL; waits for "load", so annotate.js is running
        page.keyboard.press("Enter")  # the acknowledge button has the focus
    expect(page.locator("#annotate-form")).to_be_visible()

    seen: list[tuple[str, str]] = []
    for n, (key, label) in enumerate([("1", "positive"), ("2", "negative"), ("3", "neutral")], start=1):
        text = page.locator("#item-text").inner_text()
        page.keyboard.press(key)
        expect(page.locator(f'input[name="label"][value="{label}"]')).to_be_checked()
        page.keyboard.press("Enter")
        expect(page.locator("#item-text")).not_to_have_text(text)
        expect(page.locator("#my-submitted")).to_have_text(str(n))
        expect(page.locator("#project-done")).to_have_text(str(n))
        seen.append((text, label))

    submitted = Annotation.objects.filter(annotator=annotator, status=AnnotationStatus.SUBMITTED)
    stored = {a.item.text: a.value["label"] for a in submitted.select_related("item")}
    assert stored == dict(seen)

    # The picture in the docs: the fourth item with a label picked, guidelines beside it.
    page.keyboard.press("2")
    expect(page.locator("#draft-status")).to_contain_text("Draft saved")
    page.screenshot(path=str(screenshot_dir / "annotate.png"), full_page=True)


def test_autosave_unsure_skip_and_undo_by_keyboard(page: Page, sentiment):
    project, annotator = sentiment
    acknowledge_guidelines(project, annotator)
    log_in(page, "annotator1", f"/projects/{project.pk}/annotate/")
    first = page.locator("#item-text").inner_text()

    # Autosave: the pick and an unsure note survive a reload.
    page.keyboard.press("3")
    page.keyboard.press("?")
    expect(page.locator("#note")).to_be_focused()
    page.keyboard.type("could be irony")
    page.keyboard.press("Escape")
    saved = wait_until(lambda: Draft.objects.filter(annotator=annotator, note="could be irony").first())
    assert saved.value == {"label": "neutral"} and saved.unsure
    page.reload()
    expect(page.locator('input[name="label"][value="neutral"]')).to_be_checked()
    expect(page.locator("#unsure")).to_be_checked()
    expect(page.locator("#note")).to_have_value("could be irony")

    # Submit, then U brings the item back with its value.
    page.keyboard.press("Enter")
    expect(page.locator("#item-text")).not_to_have_text(first)
    page.keyboard.press("u")
    expect(page.locator("#item-text")).to_have_text(first)
    expect(page.locator('input[name="label"][value="neutral"]')).to_be_checked()
    assert Annotation.objects.get(annotator=annotator).status == AnnotationStatus.RETRACTED

    # S asks for a reason; Enter in the reason skips.
    page.keyboard.press("s")
    expect(page.locator("#skip-reason")).to_be_focused()
    page.keyboard.type("not a product review")
    page.keyboard.press("Enter")
    expect(page.locator(".workspace .msg.success")).to_have_text(re.compile(r"Skipped item #\d+"))
    skipped = Claim.objects.get(annotator=annotator, status=ClaimStatus.SKIPPED)
    assert skipped.item.text == first and skipped.skip_reason == "not a product review"


def test_instruction_response_is_edited_and_sent_with_ctrl_enter(page: Page, transactional_db):
    owner, annotator = make_user("owner"), make_user("annotator1")
    project = project_create(owner=owner, name="Replies", task_type=TaskType.INSTRUCTION, overlap=1)
    membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
    add_items(project, ["Say hello to a new user."], response="hi")
    add_items(project, ["Explain what a lease is."], response="A lease reserves an item for a while.")
    log_in(page, "annotator1", f"/projects/{project.pk}/annotate/")

    response = page.locator("#response")
    expect(response).to_be_focused()  # typing starts at once
    expect(response).to_have_value("hi")
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("Hello and welcome! Ask me anything.")
    page.keyboard.press("Enter")  # a newline in the text, not a submit
    page.keyboard.type("Have fun.")
    page.keyboard.press("Control+Enter")

    expect(page.locator("#item-text")).to_have_text("Explain what a lease is.")
    expect(page.locator("#response")).to_have_value("A lease reserves an item for a while.")
    expect(page.locator("#response")).to_be_focused()
    expect(page.locator("#my-submitted")).to_have_text("1")
    stored = Annotation.objects.get(annotator=annotator)
    assert stored.value == {"response": "Hello and welcome! Ask me anything.\nHave fun."}
