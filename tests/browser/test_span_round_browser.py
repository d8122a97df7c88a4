"""A span project's owner turns overlapping spans off (refused while an annotation overlaps, naming it) and reads
the next round's plan, ordered by the span run's least sure word, in a real browser (Debian chromium).

Screenshots: docs/screenshots/span-settings.png and span-round-plan.png when LABELLOOP_SCREENSHOTS points there.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import Annotation, Item, ItemSplit, Project, Split
from annotation.projects.services import guideline_publish
from tests.fixtures.people import add_items, make_user
from tests.fixtures.rounds import approve, run_row
from tests.fixtures.spans import span, span_project
from training.models import ModelOutput

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Texts waiting for annotation, and how unsure the span run is of each (1 − its least sure word's tag).
WAITING = {
    "Grace Hopper spoke at Arlington on Tuesday.": 0.62,
    "The committee met in Geneva with Dr. Okafor.": 0.48,
    "Turing walked from Bletchley to the station.": 0.31,
    "Rain is expected over the weekend.": 0.27,
    "Marie Curie lectured in Warsaw.": 0.04,
    "Charles Babbage wrote from London.": 0.03,
}


def login(page, username: str) -> None:
    page.goto(reverse("login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw-" + username)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def _loop(owner, annotator) -> Project:
    project = span_project(owner, [annotator], allow_overlap=True, overlap=1)
    guideline_publish(project=project, author=owner, body="Mark people (PER) and places (LOC).")
    ada = Item.objects.get(project=project, text__startswith="Ada")
    Annotation.objects.create(
        item=ada,
        annotator=annotator,
        value={"spans": [span(ada.text, "Ada Lovelace", "PER"), span(ada.text, "Lovelace", "LOC")]},
    )
    Item.objects.filter(project=project).update(is_open=False, status="approved")
    run = run_row(project, owner, task="spans")
    for text, uncertainty in WAITING.items():
        item = add_items(project, [text])[0]
        first = text.split()[0]
        spans = [span(text, first, "PER")] if first[0].isupper() and first != "The" and first != "Rain" else []
        ModelOutput.objects.create(
            run=run, item=item, value={"spans": spans}, confidence=0.9, uncertainty=uncertainty,
            probabilities={"least_word": 1.0 - uncertainty},
        )
    held = add_items(project, ["Hedy Lamarr left Vienna in 1937."])[0]
    ItemSplit.objects.create(item=held, split=Split.TEST)
    ModelOutput.objects.create(
        run=run, item=held, value={"spans": []}, confidence=1.0, uncertainty=0.71, probabilities={"least_word": 0.29}
    )
    approved = add_items(project, ["Emmy Noether taught in Erlangen."])[0]
    approve(approved, {"spans": [span(approved.text, "Emmy", "PER")]})
    whole = [span(approved.text, "Emmy Noether", "PER"), span(approved.text, "Erlangen", "LOC")]
    ModelOutput.objects.create(
        run=run, item=approved, value={"spans": whole}, confidence=0.96, uncertainty=0.05,
        probabilities={"least_word": 0.95},
    )
    return project


def test_owner_is_refused_turning_overlaps_off_then_reads_the_span_round_plan(page, screenshot_dir):
    owner, annotator = make_user("owner"), make_user("ann")
    project = _loop(owner, annotator)
    login(page, "owner")

    page.goto(reverse("project-settings", args=[project.pk]))
    box = page.locator("input[name=allow_overlapping_spans]")
    assert box.is_checked()
    box.uncheck()
    page.locator("#annotation button[type=submit]").click()
    page.wait_for_load_state()
    error = page.locator("#span-overlap .error")
    ada = Item.objects.get(project=project, text__startswith="Ada")
    assert f"on item #{ada.pk}" in error.inner_text()
    page.locator("#annotation").screenshot(path=str(screenshot_dir / "span-settings.png"))
    project.refresh_from_db()
    assert project.allow_overlapping_spans is True

    page.goto(reverse("round-plan", args=[project.pk]) + "?random_share=0")
    rows = page.locator("#plan-queue-table tbody tr")
    assert "Grace Hopper" in rows.nth(0).inner_text() and "least sure word 0.620" in rows.nth(0).inner_text()
    last = rows.nth(rows.count() - 1).inner_text()
    assert "Lamarr" in last and "test split: the model is not used" in last  # unscored, last
    assert "get no score from the model" in page.locator("#plan-preview").inner_text()
    assert "Emmy Noether" in page.locator("#plan-preview").inner_text()  # the contradicted final spans
    page.screenshot(path=str(screenshot_dir / "span-round-plan.png"), full_page=True)
