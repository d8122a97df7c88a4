"""An instruction project's quality page in the browser: written responses compared (ROUGE-L between annotators and
against the final response), no class figures, and no chart script error where there is no chart."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from annotation.models import Annotation, Decision, DecisionSource, Item, ItemStatus, Role, TaskType
from annotation.projects.services import membership_set, project_create
from tests.fixtures.people import add_items, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_owner_reads_how_alike_responses_are(page: Page, screenshot_dir):
    owner, first, second = make_user("owner"), make_user("annotator1"), make_user("annotator2")
    project = project_create(owner=owner, name="Replies", task_type=TaskType.INSTRUCTION)
    for person in (first, second):
        membership_set(project=project, user=person, role=Role.ANNOTATOR)
    items = add_items(project, ["Say hello.", "Name a colour."])
    said = [("Hello there, friend.", "Hello there!", "Hello there, friend."), ("Blue.", "Red.", "Red.")]
    for item, (a, b, final) in zip(items, said, strict=True):
        Annotation.objects.create(item=item, annotator=first, value={"response": a})
        Annotation.objects.create(item=item, annotator=second, value={"response": b})
        Decision.objects.create(item=item, value={"response": final}, source=DecisionSource.REVIEWER)
    Item.objects.filter(project=project).update(status=ItemStatus.APPROVED)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"/accounts/login/?next=/projects/{project.pk}/quality/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill("pw-owner")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**/projects/{project.pk}/quality/")
    expect(page.locator("#response-pairs-table")).to_contain_text("annotator1")
    expect(page.locator("#response-final-table")).to_contain_text("50.0 %")
    expect(page.locator("#response-checks")).to_contain_text("Noise scans look for wrong class labels")
    expect(page.get_by_text("Fleiss")).to_have_count(0)
    page.screenshot(path=str(screenshot_dir / "quality-responses.png"), full_page=True)
    assert errors == []
