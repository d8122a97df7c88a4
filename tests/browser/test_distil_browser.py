"""An owner distils a finished run into a smaller student in a real browser: the action on the teacher's page,
the form (a bad value is refused by field, nothing queued), the student's page with teacher and student side by
side once the worker has trained it, and the student listed on the teacher's page."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_training_browser import log_in
from tests.fixtures.people import make_user
from tests.fixtures.runs import TINY_BERT_SPEC, run_worker, sentiment_snapshot
from training.models import RunStatus, TrainingRun
from training.runs import services

pytestmark = pytest.mark.browser


@pytest.fixture
def teacher(transactional_db, tiny_models, queues):
    owner = make_user("owner")
    snapshot = sentiment_snapshot(owner)
    run = services.run_start(snapshot=snapshot, user=owner, spec_data=TINY_BERT_SPEC, name="tiny lora teacher")
    assert run_worker()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def test_distil_a_run_and_see_the_student_beside_its_teacher(page: Page, teacher, screenshot_dir):
    project_id = teacher.project_id
    log_in(page, "owner", f"/projects/{project_id}/runs/{teacher.pk}/")
    page.locator("#run-distil").click()
    page.wait_for_url(f"**/runs/{teacher.pk}/distil/")
    expect(page.locator("#id_student_layers")).to_have_value("1")  # half of the tiny teacher's 2 layers
    expect(page.locator("#id_method")).to_have_value("full")
    page.screenshot(path=str(screenshot_dir / "distil_form.png"), full_page=True)

    page.fill("#id_distill_alpha", "2")
    page.get_by_role("button", name="Start the student").click()
    expect(page.locator('[data-field="distill_alpha"] .error')).to_contain_text("must be between 0.0 and 1.0")
    assert not TrainingRun.objects.filter(teacher=teacher).exists()

    page.fill("#id_distill_alpha", "0.7")
    page.fill("#id_learning_rate", "0.01")
    page.fill("#id_name", "one-layer student")
    page.get_by_role("button", name="Start the student").click()
    page.wait_for_url("**/runs/*/")
    student = TrainingRun.objects.get(teacher=teacher)
    expect(page.locator("#run-teacher")).to_have_text(f"run #{teacher.pk}")
    expect(page.locator("#run-distillation")).to_contain_text("compared on the test split once the student")

    assert run_worker()
    expect(page.locator("#run-status")).to_have_text("Succeeded", timeout=30_000)
    sizes = page.locator("#distil-sizes")
    expect(sizes).to_contain_text("Transformer layers")
    expect(sizes).to_contain_text("Speed (items/s)")
    expect(page.locator("#distil-figures")).to_contain_text("Macro-F1")
    page.screenshot(path=str(screenshot_dir / "distil_student.png"), full_page=True)

    page.goto(f"/projects/{project_id}/runs/{teacher.pk}/")
    expect(page.locator("#run-students")).to_contain_text(f"Run #{student.pk} · one-layer student")
