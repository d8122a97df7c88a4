"""An owner augments a snapshot's train rows in a real browser, watches the job finish, reads the rows beside
their sources, and goes on to a run form with the augmentation chosen.

The job runs through a real RQ worker (SimpleWorker, burst) on the embedded Redis; the page's htmx polling
brings the result without a reload. Synonyms come from the tiny BERT's token embeddings under MiniLM's name.
"""

from __future__ import annotations

import django_rq
import pytest
from playwright.sync_api import Page, expect

from core.queues import JsonSimpleWorker
from tests.browser.test_training_browser import log_in
from tests.fixtures.people import make_user
from tests.fixtures.runs import sentiment_snapshot
from training.augment import services
from training.models import Augmentation, AugmentationStatus

pytestmark = pytest.mark.browser


@pytest.fixture
def snapshot(transactional_db, tiny_models, queues, settings, tiny_bert):
    settings.LABELLOOP_MODEL_REGISTRY = {**settings.LABELLOOP_MODEL_REGISTRY, "minilm": str(tiny_bert)}
    django_rq.get_queue(services.SHORT_QUEUE).empty()
    yield sentiment_snapshot(make_user("owner"), count=60)
    django_rq.get_queue(services.SHORT_QUEUE).empty()


def test_augment_from_the_snapshot_page_and_train_with_the_rows(page: Page, snapshot, screenshot_dir):
    project = snapshot.project
    log_in(page, "owner", f"/projects/{project.pk}/snapshots/{snapshot.pk}/")
    page.get_by_role("link", name="Augment the train rows").click()
    page.wait_for_url(f"**/snapshots/{snapshot.pk}/augment/")
    expect(page.locator('input[value="back_translation"]')).to_be_disabled()
    expect(page.locator("#why-back_translation")).to_contain_text("none is installed")
    page.fill("#id_per_row", "0")
    page.get_by_role("button", name="Augment").click()
    expect(page.locator("#augment-error")).to_contain_text("whole number from 1")
    assert not Augmentation.objects.exists()  # nothing queued on bad input
    page.screenshot(path=str(screenshot_dir / "augment-form.png"), full_page=True)

    page.fill("#id_per_row", "2")
    page.get_by_role("button", name="Augment").click()
    page.wait_for_url("**/augmentations/*/")
    django_rq.get_worker(services.SHORT_QUEUE, worker_class=JsonSimpleWorker).work(burst=True)
    assert Augmentation.objects.get().status == AugmentationStatus.SUCCEEDED
    expect(page.locator("#augmentation-sample")).to_be_visible(timeout=15_000)  # the polling brought it
    expect(page.locator("#augmentation-counts")).to_contain_text("synonyms")
    page.screenshot(path=str(screenshot_dir / "augment-detail.png"), full_page=True)

    page.get_by_role("link", name="Train on the snapshot with these rows").click()
    page.wait_for_url(f"**/snapshots/{snapshot.pk}/train/?augmentation=*")
    expect(page.locator("#id_augmentation")).to_have_value(str(Augmentation.objects.get().pk))
