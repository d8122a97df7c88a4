"""Pre-labelling in the browser: the owner finds Suggestions from the project, starts a run, follows it to the
end, reads its accuracy beside the baselines and the warning, and shows its suggestions to annotators, who only
then see a pre-label. Screenshots: suggestions.png (the runs and the form), suggestion_run.png (a finished run)."""

from __future__ import annotations

import django_rq
import pytest
from playwright.sync_api import Page, expect

from annotation.models import Role
from annotation.projects.services import membership_set, project_create
from core.queues import JsonSimpleWorker
from tests.fixtures.people import acknowledge_guidelines, add_items, make_user
from tests.training.suggestions.test_suggestions import VOCAB, approve_corpus, word_text
from training.models import SuggestionRun
from training.suggestions import services as suggestions

pytestmark = pytest.mark.browser

GUIDELINES = """# Feelings

- **positive**: the writer is pleased, happy or grateful.
- **negative**: the writer is angry, sad or disappointed.
- **neutral**: facts, plans and addresses, no feeling either way.
"""


def login(page: Page, username: str, next_url: str) -> None:
    page.goto(f"/accounts/login/?next={next_url}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"pw-{username}")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{next_url}")


def test_owner_runs_suggestions_compares_them_and_shows_them_only_when_chosen(
    page: Page, transactional_db, screenshot_dir, settings
):
    settings.LABELLOOP_EMBEDDER = "tests.training.suggestions.test_suggestions.hashing_embed"
    owner, annotator = make_user("owner"), make_user("annotator1")
    project = project_create(owner=owner, name="Feelings", labels=list(VOCAB), guidelines=GUIDELINES)
    membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
    acknowledge_guidelines(project, annotator)
    approve_corpus(project, per_class=20)
    add_items(project, [word_text(label, 40 + i) for i in range(10) for label in VOCAB])
    queue = django_rq.get_queue(suggestions.QUEUE, commit_mode="auto")
    queue.empty()

    login(page, "owner", f"/projects/{project.pk}/")
    page.get_by_role("link", name="Suggestions").click()
    expect(page.get_by_role("heading", name="Suggestions", exact=True)).to_be_visible()
    expect(page.locator(".method-blocker")).to_contain_text("instruction")  # draft responses: not for labels
    page.get_by_label("Embedding nearest centroid of k approved items per label (k-shot)").check()
    page.screenshot(path=str(screenshot_dir / "suggestions.png"), full_page=True)
    page.locator("#start-suggestions").click()
    expect(page.locator("#suggestion-status")).to_contain_text("Queued")
    run = SuggestionRun.objects.get()

    django_rq.get_worker(suggestions.QUEUE, worker_class=JsonSimpleWorker).work(burst=True)
    # The status polls itself; once the run ends the page reloads with its figures.
    table = page.locator("#suggestion-comparison")
    expect(table).to_be_visible(timeout=15_000)
    expect(page.locator("#suggestion-status")).to_contain_text("Succeeded")
    expect(table).to_contain_text("This run")
    expect(table).to_contain_text("Baseline: TF-IDF + logistic regression")
    expect(page.locator("#prelabel-warning")).to_contain_text("Pre-labels bias blind annotation")
    expect(page.locator("#suggestion-provenance")).to_contain_text("Few-shot examples")
    expect(page.get_by_label("Show as pre-labels to annotators")).not_to_be_checked()  # off by default
    page.screenshot(path=str(screenshot_dir / "suggestion_run.png"), full_page=True)

    # Annotators see no pre-label until the owner turns it on.
    annotator_page = page.context.browser.new_page(base_url=page.url.split("/projects")[0])
    login(annotator_page, "annotator1", f"/projects/{project.pk}/annotate/")
    expect(annotator_page.locator("#prelabel")).to_have_count(0)

    page.get_by_label("Show as pre-labels to annotators").check()
    page.locator("#apply-suggestions").click()
    expect(page.get_by_label("Show as pre-labels to annotators")).to_be_checked()
    run.refresh_from_db()
    assert run.shown_as_prelabels
    annotator_page.reload()
    expect(annotator_page.locator("#prelabel")).to_contain_text("Pre-label")
    annotator_page.close()
