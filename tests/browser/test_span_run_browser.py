"""A span run in a real browser: the owner starts it from the snapshot's run form (only the span recipe's
settings shown), the worker trains it, and the run page shows entity F1 beside the gazetteer with intervals, then
turns the run's spans into pre-annotations."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from annotation.datasets.services import snapshot_create
from annotation.imports import services as imports
from annotation.models import Item, LabelsAs, TaskType
from annotation.projects.services import project_create
from tests.browser.test_annotate_browser import log_in
from tests.fixtures.people import add_items, make_user
from tests.fixtures.runs import *  # noqa: F403
from tests.fixtures.runs import run_worker
from tests.training.test_span_training import conll
from training.models import RunStatus, TrainingRun

pytestmark = pytest.mark.browser


def test_start_a_span_run_read_its_evaluation_and_pre_annotate(page: Page, transactional_db, tiny_models, queues,
                                                                screenshot_dir):
    owner = make_user("owner")
    project = project_create(owner=owner, name="NER", task_type=TaskType.SPANS, labels=["PER", "LOC"], overlap=1)
    imports.import_create(
        project=project, user=owner, file_name="ner.conll", fileobj=io.BytesIO(conll(40)), labels_as=LabelsAs.FINAL
    )
    snapshot = snapshot_create(project=project, user=owner, name="v1", allow_small_test=True)
    fresh = add_items(project, ["bob was in oslo today", "carol was in lima again"])

    create = reverse("run-create", args=[project.pk, snapshot.pk])
    log_in(page, "owner", create)
    expect(page.locator("#id_curriculum")).to_have_count(0)  # settings the span recipe does not read are left out
    page.select_option("#id_base_model", "tiny-bert")
    page.fill("#id_learning_rate", "0.01")
    page.fill("#id_epochs", "6")
    page.fill("#id_max_length", "32")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url("**/runs/*/")
    run = TrainingRun.objects.get(project=project)
    run_worker()  # trains, then predicts the test split and the new items
    run_worker()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error

    page.reload()
    evaluation = page.locator("main")
    expect(evaluation).to_contain_text("Entity F1")
    expect(evaluation).to_contain_text("Gazetteer")
    page.screenshot(path=str(screenshot_dir / "span-run.png"), full_page=True)
    page.get_by_role("button", name="Use these spans as pre-annotations").click()
    expect(page.locator("body")).to_contain_text("Pre-annotated 2 items")
    assert all(item.prelabel is not None for item in Item.objects.filter(pk__in=[i.pk for i in fresh]))
