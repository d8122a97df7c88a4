"""Explanations in a real browser: a reviewer goes from the run page's outputs to an output's explanation, asks
for it, and the page (polling) shows the words highlighted once the worker is done; the same for a generated
response's token probabilities, reached from the rating page."""

from __future__ import annotations

import shutil
from pathlib import Path

import django_rq
import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from core.queues import JsonSimpleWorker
from tests.fixtures.people import add_items
from tests.fixtures.runs import TINY_LLAMA_SPEC, fake_run, qa_snapshot, team
from tests.fixtures.tiny_models import qa_rows
from training.explanations.selectors import EXPLANATIONS_QUEUE
from training.models import Explanation, ModelOutput, RunStatus, TrainingRun

pytestmark = pytest.mark.browser


def drain() -> None:
    django_rq.get_worker(EXPLANATIONS_QUEUE, worker_class=JsonSimpleWorker).work(burst=True)


def log_in(page: Page, username: str, next_url: str) -> None:
    page.goto(f"/accounts/login/?next={next_url}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-" + username)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{next_url}")


@pytest.fixture
def fresh(transactional_db):
    from training.runs import serving

    django_rq.get_queue(EXPLANATIONS_QUEUE).empty()
    serving._predictors.clear()
    yield
    serving._predictors.clear()


def test_a_reviewer_explains_a_prediction_from_the_run_page(page: Page, fresh, world, screenshot_dir):
    from training.runs import serving

    run = world.done
    text = "the acting was really great and the plot was lovely"
    item = add_items(world.project, [text])[0]
    (prediction,) = serving.predict(run, [text])
    output = ModelOutput.objects.create(run=run, item=item, value={"label": prediction["label"]},
                                        probabilities=prediction["probabilities"],
                                        confidence=prediction["confidence"], uncertainty=prediction["entropy"])
    world.project.show_model_confidence = True
    world.project.save(update_fields=["show_model_confidence"])

    log_in(page, "reviewer", f"/projects/{world.project.pk}/runs/{run.pk}/")
    page.locator(f'a.explain-link[href$="/outputs/{output.pk}/explanation/"]').click()
    expect(page.locator("#predicted-label")).to_have_text(prediction["label"])
    page.locator("#explain-button").click()
    expect(page.locator("#explain-state")).to_contain_text("Queued")
    drain()
    assert Explanation.objects.get().status == "succeeded"
    words = page.locator("#explained-text .w")  # the fragment polls every 2 s and swaps in the result
    expect(words).to_have_count(len(text.split()), timeout=15_000)
    expect(page.locator("#top-words tbody tr").first).to_be_visible()
    title = page.locator("#explained-text .w", has_text="great").get_attribute("title") or ""
    assert f"log-odds towards {prediction['label']}" in title or f"log-odds against {prediction['label']}" in title
    expect(page.locator("#explain-state")).to_have_count(0)
    page.screenshot(path=str(screenshot_dir / "explanation.png"), full_page=True)


def test_a_reviewer_sees_a_responses_token_probabilities_from_the_rating_page(
    page: Page, fresh, tiny_models, registry, owner, annotator, reviewer, screenshot_dir, tmp_path
):
    from training.ml.recipe import Recipe
    from training.spec import TrainingSpec

    snapshot = qa_snapshot(owner, count=12)
    team(snapshot.project, annotator, reviewer)
    # Full fine-tuning for a few epochs, so the tiny model's probabilities differ visibly between tokens.
    spec = TrainingSpec.from_dict({"task": "causal_lm", **TINY_LLAMA_SPEC, "method": "full", "epochs": 8})
    recipe = Recipe(spec, train=qa_rows(24, seed=1), checkpoint_dir=tmp_path / "ck", registry=registry)
    recipe.setup()
    recipe.train()
    artifact = recipe.save(tmp_path / "artifact", snapshot_hash="0" * 64, metrics={})
    run = fake_run(snapshot, owner, status=RunStatus.SUCCEEDED)
    shutil.copytree(artifact, Path(settings.MEDIA_ROOT) / "runs" / str(run.pk) / "artifact")
    TrainingRun.objects.filter(pk=run.pk).update(artifact_dir=f"runs/{run.pk}/artifact")
    item = add_items(snapshot.project, ["what colour is the grass"])[0]
    output = ModelOutput.objects.create(run=run, item=item, value={"response": "the grass is green, like the sky"})

    log_in(page, "reviewer", f"/projects/{snapshot.project.pk}/ratings/runs/{run.pk}/?output={output.pk}")
    with page.context.expect_page() as opened:
        page.locator("#explain-link").click()  # a new tab: the rating in progress stays where it was
    tab = opened.value
    tab.locator("#explain-button").click()
    expect(tab.locator("#explain-state")).to_contain_text("Queued")
    drain()
    tokens = tab.locator("#explained-response .w")
    expect(tokens.first).to_be_visible(timeout=15_000)
    assert "".join(tokens.all_inner_texts()) == "the grass is green, like the sky"
    assert (tokens.first.get_attribute("title") or "").startswith("p = ")
    expect(tab.locator("#explain-summary")).to_contain_text("perplexity")
    tab.screenshot(path=str(screenshot_dir / "explanation_generation.png"), full_page=True)
