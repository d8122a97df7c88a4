"""A reviewer adjudicates a disagreement in a real browser (Debian chromium through Playwright).

Keyboard-first: the reviewer opens the queue, sees why the item is there and who said what, and
presses 2 to accept the second annotator's label; the decision is stored and the queue empties.
"""

from __future__ import annotations

import os
import shutil

import pytest
from django.urls import reverse

from annotation.annotate import services as ann_svc
from annotation.models import Decision, DecisionSource, ItemStatus, Project, ReviewStatus, ReviewTask, Role
from annotation.projects.services import membership_set, project_create
from tests.fixtures.people import acknowledge_guidelines, add_items, make_user

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LABELS = ["positive", "negative", "neutral"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed"),
]


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are synchronous.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        context = browser.new_context()
        tab = context.new_page()
        tab.set_default_timeout(10_000)
        yield tab
        context.close()
        browser.close()


def login(page, live_server, username: str) -> None:
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw-" + username)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_reviewer_adjudicates_a_disagreement_with_the_keyboard(page, live_server):
    owner, ann1, ann2, reviewer = (make_user(n) for n in ("owner", "ann1", "ann2", "rev"))
    project = project_create(owner=owner, name="Sentiment", labels=LABELS, guidelines="Pick the writer's feeling.")
    Project.objects.filter(pk=project.pk).update(audit_rate=0.0)
    project.refresh_from_db()
    membership_set(project=project, user=ann1, role=Role.ANNOTATOR)
    membership_set(project=project, user=ann2, role=Role.ANNOTATOR)
    membership_set(project=project, user=reviewer, role=Role.REVIEWER)
    add_items(project, ["Oh great, another Monday."])
    acknowledge_guidelines(project, ann1, ann2)
    for user, label in ((ann1, "positive"), (ann2, "negative")):
        item = ann_svc.claim_next(annotator=user, project=project).item
        ann_svc.annotation_submit(annotator=user, item=item, value={"label": label}, label_names=LABELS)

    login(page, live_server, "rev")
    page.goto(live_server.url + reverse("review-queue", args=[project.pk]))
    panel = page.locator("#review-panel")
    assert "Annotators disagree" in panel.inner_text()
    assert "ann1" in panel.inner_text() and "ann2" in panel.inner_text()
    assert "guidelines v1" in panel.inner_text()

    page.keyboard.press("2")  # accept the second annotator's label
    page.wait_for_selector("#review-empty")
    assert "Fixed" not in page.inner_text("#review-panel") and "Accepted" in page.inner_text("#review-panel")

    decision = Decision.objects.get()
    assert decision.value == {"label": "negative"}
    assert decision.source == DecisionSource.REVIEWER and decision.reviewer == reviewer
    assert decision.item.status == ItemStatus.APPROVED
    assert ReviewTask.objects.get().status == ReviewStatus.DONE

    # The history page shows both annotations and the decision.
    page.goto(live_server.url + reverse("item-history", args=[project.pk, decision.item_id]))
    assert page.inner_text("#final-value") == "negative"
    assert page.locator("tr.event-annotation").count() == 2
    assert page.locator("tr.event-decision").count() == 1
