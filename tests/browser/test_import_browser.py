"""The import page in a real browser: the file goes up by XHR (the page stays put), the job's fragment
appears and polls through htmx, and a real RQ worker finishing the job turns it into the result."""

from __future__ import annotations

import json

import django_rq
import pytest
from playwright.sync_api import Page, expect

from annotation.imports.services import QUEUE_NAME
from annotation.models import ImportStatus, Item
from annotation.projects.services import project_create
from core.queues import JsonSimpleWorker
from tests.fixtures.people import make_user

pytestmark = pytest.mark.browser


@pytest.fixture
def owned_project(transactional_db):
    owner = make_user("owner")
    return project_create(owner=owner, name="Imports", labels=["spam", "ham"])


def log_in(page: Page, username: str, next_url: str) -> None:
    page.goto(f"/accounts/login/?next={next_url}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-" + username)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{next_url}")


def test_upload_then_watch_the_queued_job_finish(page: Page, owned_project, settings, screenshot_dir):
    settings.LABELLOOP_IMPORT_INLINE_MAX_ROWS = 2  # three rows: the job goes through the queue
    queue = django_rq.get_queue(QUEUE_NAME)
    queue.empty()
    url = f"/projects/{owned_project.pk}/import/"
    log_in(page, "owner", url)

    rows = [{"text": "WIN a prize now", "label": "spam"}, {"text": "see you at 6", "label": "ham"}, {"text": "ok"}]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    page.set_input_files("#id_file", files=[{"name": "sms.jsonl", "mimeType": "application/x-ndjson", "buffer": data}])
    page.get_by_role("button", name="Upload and import").click()

    status = page.locator("#import-status")
    expect(status.locator(".import-job")).to_contain_text("Queued")
    assert page.url.endswith(url)  # sent by XHR: no navigation
    expect(page.locator("#upload-progress")).to_be_hidden()
    assert status.locator(".import-job").get_attribute("hx-trigger") == "every 1s"

    assert django_rq.get_worker(QUEUE_NAME, worker_class=JsonSimpleWorker).work(burst=True)
    expect(status).to_contain_text("Imported 3 items.")  # the fragment's own polling brought the news
    assert status.locator(".import-job").get_attribute("hx-trigger") is None
    page.screenshot(path=str(screenshot_dir / "import.png"), full_page=True)

    assert Item.objects.filter(project=owned_project).count() == 3
    assert owned_project.imports.get().status == ImportStatus.SUCCEEDED
