"""The project list in a real browser, as an owner and as an annotator: counts and progress per project,
the next step each role is offered, and an empty project that says what to do instead of "Start annotating"."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from annotation.models import Decision, DecisionSource, Item, ItemStatus, ReviewTask, Role
from annotation.projects.services import membership_set, project_create
from tests.fixtures.people import acknowledge_guidelines, add_items, make_user

pytestmark = pytest.mark.browser


@pytest.fixture
def projects(transactional_db):
    owner, annotator, reviewer = make_user("owner"), make_user("annotator1"), make_user("reviewer")
    rules = "Is it spam?\n- spam: unwanted ads\n- ham: the rest"
    spam = project_create(owner=owner, name="SMS spam", labels=["ham", "spam"], guidelines=rules)
    labels = ["bug", "question", "praise"]
    empty = project_create(owner=owner, name="Support tickets", labels=labels, guidelines="Tag it.")
    for project in (spam, empty):
        membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
        membership_set(project=project, user=reviewer, role=Role.REVIEWER)
    items = add_items(spam, [f"message number {i}" for i in range(10)])
    Item.objects.filter(pk__in=[i.pk for i in items[:6]]).update(status=ItemStatus.ANNOTATED, is_open=False)
    Item.objects.filter(pk__in=[i.pk for i in items[:3]]).update(status=ItemStatus.APPROVED)
    Item.objects.filter(pk=items[5].pk).update(status=ItemStatus.IN_REVIEW)
    ReviewTask.objects.create(project=spam, item=items[5], reasons=["disagreement"])
    for item in items[:2]:
        Decision.objects.create(item=item, reviewer=reviewer, value={"label": "ham"}, source=DecisionSource.REVIEWER)
    acknowledge_guidelines(spam, annotator)
    return {"spam": spam, "empty": empty}


def log_in(page: Page, username: str) -> None:
    page.goto("/accounts/login/?next=/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-" + username)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")


def test_owner_sees_counts_progress_and_what_to_do_next(page: Page, projects, screenshot_dir):
    log_in(page, "owner")
    expect(page.get_by_role("link", name="New project")).to_be_visible()
    spam = page.locator(f'tr[data-project="{projects["spam"].pk}"]')
    expect(spam.locator("td.num")).to_have_text(["10", "6", "2", "3"])  # items, labelled, reviewed, final
    expect(spam.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "60")
    expect(spam).to_contain_text("60% labelled · 30% final")
    expect(spam.get_by_role("link", name="Review 1 item")).to_be_visible()

    empty = page.locator(f'tr[data-project="{projects["empty"].pk}"]')
    expect(empty).to_contain_text("No items yet")
    expect(empty.get_by_role("progressbar")).to_have_count(0)
    page.screenshot(path=str(screenshot_dir / "projects.png"), full_page=True)

    empty.get_by_role("link", name="Import data").click()
    expect(page.get_by_role("heading", name="Import items")).to_be_visible()
    page.go_back()
    page.get_by_role("link", name="Support tickets").click()
    expect(page.locator(".project-empty")).to_contain_text("This project has no items yet.")
    expect(page.get_by_role("link", name="Start annotating")).to_have_count(0)
    expect(page.get_by_role("link", name="Import data").first).to_be_visible()
    expect(page.get_by_text("is new to you")).to_have_count(0)  # the owner wrote these guidelines
    page.screenshot(path=str(screenshot_dir / "project_empty.png"), full_page=True)


def test_annotator_is_offered_annotation_and_an_honest_empty_state(page: Page, projects, screenshot_dir):
    log_in(page, "annotator1")
    expect(page.get_by_role("link", name="New project")).to_have_count(0)
    spam = page.locator(f'tr[data-project="{projects["spam"].pk}"]')
    expect(spam.get_by_role("link", name="Start annotating")).to_be_visible()
    empty = page.locator(f'tr[data-project="{projects["empty"].pk}"]')
    expect(empty).to_contain_text("Nothing to annotate yet: the owner has not imported items.")
    expect(empty.get_by_role("link")).to_have_count(1)  # the project's name only
    page.screenshot(path=str(screenshot_dir / "projects_annotator.png"), full_page=True)

    empty.get_by_role("link", name="Support tickets").click()
    expect(page.locator(".project-empty")).to_contain_text("Nothing to annotate yet.")
    expect(page.get_by_role("link", name="Start annotating")).to_have_count(0)
    expect(page.get_by_role("progressbar")).to_have_count(0)


def test_the_acknowledgement_flash_goes_away(page: Page, projects):
    """Thanks for acknowledging is news once: it leaves by itself (the annotate page never reloads)."""
    log_in(page, "annotator1")
    page.goto(f"/projects/{projects['empty'].pk}/guidelines/")
    page.get_by_role("button", name="I have read version 1").click()
    flash = page.locator(".messages .msg.success")
    expect(flash).to_contain_text("you acknowledged guidelines version 1")
    expect(flash).to_have_count(0, timeout=9_000)
    expect(page.locator(".messages")).to_have_count(0)
