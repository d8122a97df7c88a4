"""An owner starts a training run from a snapshot in a real browser, watches it, and sees the final metrics.

The run trains a tiny BERT (built from a config, tokenizer trained on the fly) through a real RQ worker
(SimpleWorker, burst) on the embedded Redis; the page's htmx polling brings the result without a reload,
and stops once the run has ended. A second run is cancelled from the page while queued.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.people import make_user
from tests.fixtures.runs import TINY_BERT_SPEC, run_worker, sentiment_snapshot
from training.models import RunStatus, TrainingRun

pytestmark = pytest.mark.browser


def log_in(page: Page, username: str, next_url: str) -> None:
    page.goto(f"/accounts/login/?next={next_url}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-" + username)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{next_url}")


@pytest.fixture
def snapshot(transactional_db, tiny_models, queues):
    return sentiment_snapshot(make_user("owner"))


def fill_run_form(page: Page, name: str) -> None:
    page.select_option("#id_base_model", "tiny-bert")
    page.fill("#id_name", name)
    for field, value in TINY_BERT_SPEC.items():
        if field != "base_model" and page.locator(f"#id_{field}").count():
            page.fill(f"#id_{field}", str(value))


def test_start_a_run_watch_it_and_read_the_evaluation(page: Page, snapshot, screenshot_dir):
    project = snapshot.project
    detail = f"/projects/{project.pk}/snapshots/{snapshot.pk}/"
    log_in(page, "owner", detail)
    page.get_by_role("link", name="Train a model").click()
    page.wait_for_url(f"**/snapshots/{snapshot.pk}/train/")

    page.fill("#id_learning_rate", "not a number")
    page.get_by_role("button", name="Start training").click()
    expect(page.locator(".field-error, .errorlist, [role=alert]").first).to_be_visible()
    assert not TrainingRun.objects.exists()  # nothing queued on bad input

    fill_run_form(page, "tiny lora")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url("**/runs/*/")
    run = TrainingRun.objects.get()
    live = page.locator("#run-live")
    expect(page.locator("#run-status")).to_have_text("Queued")
    assert live.get_attribute("hx-trigger")  # polling while the run is active

    assert run_worker()
    expect(page.locator("#run-status")).to_have_text("Succeeded", timeout=20_000)  # brought by the page's own polling
    # Polling stops once nothing can change: the run is final and the prediction batch it queued is done.
    expect(page.locator("#run-live")).not_to_have_attribute("hx-trigger", re.compile(".*"), timeout=30_000)
    evaluation = page.locator("#run-evaluation")
    expect(evaluation).to_contain_text("Macro-F1")
    expect(evaluation).to_contain_text("Majority class")  # beside its baselines
    expect(page.locator("#run-baselines")).to_contain_text("TF-IDF + logistic regression")
    # A handful of test items can tell nothing, and the page says so instead of celebrating.
    expect(page.locator("#run-verdict.verdict-warn")).to_be_visible()
    expect(page.locator("#run-verdict")).to_contain_text(re.compile("too small to tell|learned nothing"))
    expect(page.locator("#run-download")).to_be_visible()
    step = page.locator("#run-step").inner_text()
    total = run.spec["epochs"]  # at least one step per epoch
    assert int(step.split("/")[0]) >= total
    page.screenshot(path=str(screenshot_dir / "training_run.png"), full_page=True)
    page.goto(page.locator("#run-model-card").get_attribute("href"))
    expect(page.locator("body")).to_contain_text("## Load it with transformers and peft")
    page.screenshot(path=str(screenshot_dir / "training_model_card.png"), full_page=True)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.metrics


def test_cancel_a_queued_run_from_its_page(page: Page, snapshot):
    project = snapshot.project
    log_in(page, "owner", f"/projects/{project.pk}/snapshots/{snapshot.pk}/train/")
    fill_run_form(page, "to cancel")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url("**/runs/*/")
    page.locator("#run-cancel").click()
    expect(page.locator("#run-cancel-confirm")).to_contain_text("no evaluation")
    page.locator("#confirm-run-cancel").click()
    expect(page.locator("#run-status")).to_have_text("Cancelled")
    assert TrainingRun.objects.get().status == RunStatus.CANCELLED


def test_a_queued_run_shows_its_place_then_the_evaluation_its_own_progress(page: Page, snapshot, screenshot_dir):
    """The place in the training queue follows the queue (the page polls), the evaluation after training shows items
    done of total with its own ETA, and no "Run N queued" flash outlives the queued state."""
    import django_rq
    from django.utils import timezone

    queue = django_rq.get_queue("training", commit_mode="auto")
    queue.enqueue("training.runs.jobs.runs_sweep_job", job_id="a-longer-run")
    project = snapshot.project
    log_in(page, "owner", f"/projects/{project.pk}/snapshots/{snapshot.pk}/train/")
    fill_run_form(page, "waits its turn")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url("**/runs/*/")
    place = page.locator("#run-queue")
    expect(place).to_contain_text("Queued — 1 job ahead of it in the training queue")
    expect(page.locator(".messages")).to_have_count(0)
    page.screenshot(path=str(screenshot_dir / "run_queued.png"), full_page=True)

    queue.remove("a-longer-run")
    expect(place).to_contain_text("Queued — next in the training queue", timeout=10_000)

    run = TrainingRun.objects.get(name="waits its turn")
    TrainingRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now(),
        progress={"phase": "evaluating", "step": 12, "total_steps": 12, "eta_s": None, "phase_done": 90,
                  "phase_total": 360, "phase_unit": "items", "phase_eta_s": 150.0},
    )
    expect(page.locator("#run-phase-progress")).to_contain_text(
        "Evaluating: 90 of 360 items · ETA 2 min 30 s", timeout=10_000
    )
    expect(place).to_have_count(0)
    page.screenshot(path=str(screenshot_dir / "run_evaluating.png"), full_page=True)
    queue.empty()
