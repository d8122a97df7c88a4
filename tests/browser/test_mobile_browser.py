"""Labelloop on a phone (390 px wide) in a real browser: no page is wider than the screen (a wide table scrolls inside
its card, the project list reflows), the review queue's list scrolls in its own box so the panel follows it, a tapped
review queue item brings its panel into view, the members section
is where the page lands after a change, and the annotate page's key hints say what the keys do in the note box.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from annotation.models import Project, ReviewStatus, ReviewTask, Role, RoutingPolicy
from annotation.projects.services import membership_set, project_create
from tests.browser.conftest import VIEWPORT
from tests.fixtures.people import acknowledge_guidelines, add_items, make_user
from tests.fixtures.reviews import LABELS, submit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
QUEUE_LENGTH = 12


@pytest.fixture
def phone(browser, live_server) -> Iterator[Page]:
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def queue() -> Project:
    """A fixed-routing project whose two annotators disagree on every item: a long review queue."""
    owner, ann1, ann2, reviewer = (make_user(n) for n in ("owner", "ann1", "ann2", "reviewer"))
    project = project_create(
        owner=owner, name="Sentiment", labels=LABELS, guidelines="Pick the writer's feeling.",
        routing_policy=RoutingPolicy.FIXED,
    )
    Project.objects.filter(pk=project.pk).update(audit_rate=0.0)
    for user, role in ((ann1, Role.ANNOTATOR), (ann2, Role.ANNOTATOR), (reviewer, Role.REVIEWER)):
        membership_set(project=project, user=user, role=role)
    add_items(project, [f"Review {i}: the soup was cold but the staff were lovely." for i in range(QUEUE_LENGTH)])
    acknowledge_guidelines(project, ann1, ann2)
    for _ in range(QUEUE_LENGTH):
        submit(ann1, project, "positive")
        submit(ann2, project, "negative")
    assert ReviewTask.objects.filter(item__project=project, status=ReviewStatus.OPEN).count() == QUEUE_LENGTH
    return project


def log_in(page: Page, username: str, path: str) -> None:
    page.goto(reverse("login") + f"?next={path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"pw-{username}")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{path}")


def page_width(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_no_page_is_wider_than_the_phone(phone: Page, queue: Project, screenshot_dir):
    pk = queue.pk
    log_in(phone, "owner", "/")
    for path in (
        "/",
        f"/projects/{pk}/",
        f"/projects/{pk}/quality/",
        f"/projects/{pk}/review/",
        f"/projects/{pk}/settings/",
        f"/projects/{pk}/snapshots/",
        f"/projects/{pk}/import/",
        "/projects/new/",
    ):
        phone.goto(path)
        assert page_width(phone) <= PHONE["width"], path
    phone.goto(f"/projects/{pk}/quality/")
    # The routing plan's columns do not fit: the table scrolls inside its card, and its last column scrolls into view.
    scroller = phone.locator(".table-scroll:has(#routing-plan-table)")
    assert scroller.evaluate("e => e.scrollWidth > e.clientWidth")
    last = phone.locator("#routing-plan-table thead th").last
    last.scroll_into_view_if_needed()
    assert last.evaluate("e => e.getBoundingClientRect().right") <= PHONE["width"]
    assert page_width(phone) <= PHONE["width"]
    phone.locator("#routing-plan").screenshot(path=str(screenshot_dir / "phone-routing-plan.png"))
    phone.goto("/")
    phone.screenshot(path=str(screenshot_dir / "phone-projects.png"), full_page=True)


def test_a_tapped_queue_item_brings_its_panel_into_view(phone: Page, queue: Project, screenshot_dir):
    log_in(phone, "reviewer", reverse("review-queue", args=[queue.pk]))
    panel = phone.locator("#review-panel")
    # on a phone the queue's list scrolls in its own box, so the panel starts within reach, not under every entry
    entries = phone.locator(".review-entries")
    assert entries.evaluate("e => e.scrollHeight > e.clientHeight")
    assert panel.evaluate("e => e.getBoundingClientRect().top") < 1.5 * PHONE["height"]
    entry = phone.locator(".review-entries li").nth(9)  # under the fold of the list's box
    task = entry.get_attribute("data-task")
    entry.get_by_role("link").tap()
    expect(phone.locator(f'#review-panel article[data-task="{task}"]')).to_be_visible()
    expect(phone.locator("#review-panel h2").first).to_be_in_viewport()
    top = panel.evaluate("e => e.getBoundingClientRect().top")
    assert 0 <= top < 50, top
    # the swap re-drew the list at its top: the tapped entry is brought back into the list's box
    current = phone.locator(f'.review-entries li.current[data-task="{task}"]')
    box, row = entries.bounding_box(), current.bounding_box()
    assert box is not None and row is not None and box["y"] <= row["y"] < box["y"] + box["height"], (box, row)
    phone.screenshot(path=str(screenshot_dir / "phone-review-tapped.png"))

    # Saving a decision brings the next task's panel to its top as well.
    phone.locator("#final-form .choice", has_text="neutral").tap()
    phone.locator("#final-form").get_by_role("button", name="Save final label").tap()
    expect(phone.locator(f'#review-panel article[data-task="{task}"]')).to_have_count(0)
    expect(phone.locator("#review-panel h2").first).to_be_in_viewport()


def test_on_a_wide_screen_a_clicked_item_keeps_the_page_heading_in_view(page: Page, queue: Project):
    assert VIEWPORT["width"] > 760  # side by side
    log_in(page, "reviewer", reverse("review-queue", args=[queue.pk]))
    entry = page.locator(".review-entries li").nth(1)
    task = entry.get_attribute("data-task")
    entry.get_by_role("link").click()
    expect(page.locator(f'#review-panel article[data-task="{task}"]')).to_be_visible()
    expect(page.get_by_role("heading", name="Review queue")).to_be_in_viewport()

    # Scrolled down the queue, a click brings the panel (beside the queue's top) back into view.
    last = page.locator(".review-entries li").last
    last.scroll_into_view_if_needed()
    assert page.evaluate("scrollY") > 0
    task = last.get_attribute("data-task")
    last.get_by_role("link").click()
    expect(page.locator(f'#review-panel article[data-task="{task}"]')).to_be_in_viewport()


def test_members_changes_land_on_the_members_section(phone: Page, queue: Project, screenshot_dir):
    make_user("outsider")
    log_in(phone, "owner", f"/projects/{queue.pk}/settings/")
    add = phone.locator("#member-add")
    add.get_by_label("Username").fill("outsider")
    add.get_by_label("Role").select_option("reviewer")
    add.get_by_role("button", name="Add member").tap()
    notice = phone.locator("#member-notice")
    expect(notice).to_have_text("User “outsider” is now a reviewer of this project.")
    expect(notice).to_be_in_viewport()

    add.get_by_label("Username").fill("newbie")
    add.get_by_role("button", name="Add member").tap()
    error = phone.locator("#members .error")
    expect(error).to_contain_text("tick “Create this account”")
    expect(error).to_be_in_viewport()
    expect(add.get_by_label("Email (optional)")).to_be_hidden()  # only with a new account
    add.get_by_label("Create this account").check()
    expect(add.get_by_label("Email (optional)")).to_be_visible()
    add.get_by_role("button", name="Add member").tap()
    expect(phone.locator("#one-time-password")).to_be_in_viewport()
    expect(phone.locator("#member-notice")).to_contain_text("Account “newbie” created")
    assert page_width(phone) <= PHONE["width"]
    phone.locator("#members").screenshot(path=str(screenshot_dir / "phone-members-created.png"))


def test_spans_may_overlap_shows_for_span_labelling_only(page: Page, queue: Project, screenshot_dir):
    log_in(page, "owner", "/projects/new/")
    overlap = page.get_by_label("Spans may overlap")
    expect(overlap).to_be_hidden()
    page.get_by_label("Task type").select_option("spans")
    expect(overlap).to_be_visible()
    page.get_by_label("Task type").select_option("multi_label")
    expect(overlap).to_be_hidden()


def test_the_note_box_keys_do_what_the_hints_say(page: Page, queue: Project, screenshot_dir):
    annotator = make_user("ann3")
    membership_set(project=queue, user=annotator, role=Role.ANNOTATOR)
    add_items(queue, ["One more to label."])
    acknowledge_guidelines(queue, annotator)
    log_in(page, "ann3", reverse("annotate", args=[queue.pk]))
    hint = page.locator("#note-keys")
    expect(hint).to_be_hidden()
    page.keyboard.press("?")  # unsure: the note box opens and takes the keys
    expect(hint).to_have_text(
        "Enter adds a line · Ctrl+Enter submits · Esc leaves the box (the note stays), so keys work again"
    )
    expect(page.locator("#keys-text-box")).to_contain_text("Enter a new line, Ctrl+Enter submit")
    note = page.locator("#note")
    expect(note).to_be_focused()
    page.keyboard.type("Sarcasm?")
    page.keyboard.press("Enter")
    page.keyboard.type("Hard to tell.")
    expect(note).to_have_value("Sarcasm?\nHard to tell.")  # Enter added a line, nothing was submitted
    page.keyboard.press("Escape")
    expect(note).not_to_be_focused()
    page.keyboard.press("1")  # keys work again: picks the first label
    expect(page.locator('input[data-hotkey="1"]')).to_be_checked()
    expect(note).to_have_value("Sarcasm?\nHard to tell.")
    page.locator(".annotate-main").screenshot(path=str(screenshot_dir / "annotate-note-keys.png"))


def test_the_routing_choice_shows_its_whole_name_on_a_wide_screen(page: Page, queue: Project, screenshot_dir):
    """A tester's settings page at 1280 px read "Adaptive: weighted vote within a budg": the choice sat in a third of
    the card."""
    log_in(page, "owner", f"/projects/{queue.pk}/settings/")
    choice = page.locator("select[name=routing_policy]")
    choice.select_option(RoutingPolicy.ADAPTIVE)
    fits = choice.evaluate(
        "s => { const c = document.createElement('canvas').getContext('2d'); c.font = getComputedStyle(s).font;"
        " return c.measureText(s.options[s.selectedIndex].text).width + 40 <= s.clientWidth; }"
    )
    assert fits
    choice.locator("xpath=ancestor::form").screenshot(path=str(screenshot_dir / "settings-routing.png"))
