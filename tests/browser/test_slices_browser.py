"""The run page's per-slice tables in a real browser: a flagged slice highlighted with its reason.
Screenshot: docs/screenshots/slices.png when LABELLOOP_SCREENSHOTS points there."""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse

from tests.fixtures.people import make_user
from tests.fixtures.runs import FAKE_TEST_METRICS, fake_run, sentiment_snapshot
from training.ml.slices import classification_slices
from training.models import RunStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def realistic_slices() -> dict:
    """400 test items: the "forum" source and long texts much worse than the rest, "fax" too small to tell."""
    rng = np.random.default_rng(7)
    sources = rng.choice(["web", "app", "email", "forum"], size=400, p=[0.45, 0.25, 0.15, 0.15]).tolist()
    sources[:6] = ["fax"] * 6
    bands = rng.choice(["short (< 48 chars)", "medium (48-131 chars)", "long (> 131 chars)"], size=400).tolist()
    y_true = rng.integers(0, 2, 400)
    accuracy = {"web": 0.92, "app": 0.9, "email": 0.86, "forum": 0.55, "fax": 0.5}
    right = np.array([rng.random() < accuracy[s] - (0.12 if b.startswith("long") else 0) for s, b in
                      zip(sources, bands, strict=True)])
    y_pred = np.where(right, y_true, 1 - y_true)
    baseline = np.where(rng.random(400) < 0.8, y_true, 1 - y_true)
    whole = {"accuracy": round(float(right.mean()), 3), "macro_f1": round(float(right.mean()) - 0.006, 3)}
    return classification_slices(
        {"source": sources, "length_band": bands}, y_true=y_true, y_pred=y_pred, whole=whole,
        baseline_pred=baseline, baseline_name="tfidf_logreg",
    )


def test_the_run_page_shows_the_slices_worst_first_with_the_flagged_ones_marked(page, screenshot_dir):
    owner = make_user("owner")
    snapshot = sentiment_snapshot(owner)
    report = realistic_slices()
    run = fake_run(snapshot, owner, status=RunStatus.SUCCEEDED,
                   metrics={"test": {**FAKE_TEST_METRICS, "n": 400, "slices": report}},
                   progress={"step": 10, "total_steps": 10, "phase": "done"})
    page.goto(reverse("login"))
    page.fill("input[name=username]", "owner")
    page.fill("input[name=password]", "pw-owner")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.goto(reverse("run-detail", args=[snapshot.project_id, run.pk]))
    section = page.locator("#run-slices")
    assert "Worst slice: source = forum" in section.inner_text()
    first = page.locator('table[data-field="source"] tbody tr').nth(1)
    assert first.get_attribute("data-status") == "flagged" and "Far below the whole" in first.inner_text()
    background = first.locator("td").first.evaluate("cell => getComputedStyle(cell).backgroundColor")
    assert background == "rgb(253, 236, 234)"
    section.scroll_into_view_if_needed()
    section.screenshot(path=str(screenshot_dir / "slices.png"))
