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
    expect(page.locator("#recent-imports")).to_contain_text("Succeeded")  # told by the poll's HX-Trigger
    assert status.locator(".import-job").get_attribute("hx-trigger") is None
    page.screenshot(path=str(screenshot_dir / "import.png"), full_page=True)

    assert Item.objects.filter(project=owned_project).count() == 3
    assert owned_project.imports.get().status == ImportStatus.SUCCEEDED


def test_preview_then_import_the_valid_rows_and_see_the_rest_reported(page: Page, owned_project, screenshot_dir):
    """Choosing a file shows how it maps before anything is imported; the partial import then reports the rest."""
    url = f"/projects/{owned_project.pk}/import/"
    log_in(page, "owner", url)
    rows = [
        {"id": "m1", "text": "WIN a free cruise, reply YES", "label": "spam", "source": "sms"},
        {"id": "m2", "text": "see you at 6 by the station", "label": "ham", "source": "sms"},
        '{"id": "m3", "text": "unterminated',
        {"id": "m4", "text": "", "label": "ham", "source": "sms"},
        {"id": "m5", "text": "call me when you land", "label": "maybe", "source": "chat"},
        {"id": "m6", "text": "Congratulations, you won a voucher", "label": "spam", "source": "email"},
    ]
    data = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()
    upload = {"name": "mixed.jsonl", "mimeType": "application/x-ndjson", "buffer": data}
    page.set_input_files("#id_file", files=[upload])

    preview = page.get_by_test_id("import-preview")
    expect(preview).to_contain_text("Preview of mixed.jsonl")
    expect(preview.locator(".import-preview-mapping")).to_contain_text("source")  # metadata column
    expect(preview.locator(".import-preview-rows tbody tr")).to_have_count(3)
    expect(preview).to_contain_text("mixed.jsonl line 3: invalid JSON: Unterminated string starting at column 22")
    expect(preview).to_contain_text("nothing will be imported while a row has an error")
    assert not Item.objects.filter(project=owned_project).exists()  # a preview stores nothing

    page.get_by_label("If some rows have errors").select_option("skip")
    expect(preview).to_contain_text("the valid rows will be imported and the 3 rows with errors left out")
    page.screenshot(path=str(screenshot_dir / "import_preview.png"), full_page=True)

    page.get_by_role("button", name="Upload and import").click()
    job = page.locator("#import-status .import-job")
    expect(job).to_contain_text("Imported 3 items.")
    expect(job).to_contain_text("Left out 3 rows with errors")
    expect(job.locator(".import-errors li")).to_have_count(3)
    expect(page.locator("#recent-imports")).to_contain_text("mixed.jsonl")  # refreshed without a reload
    expect(page.get_by_test_id("import-preview")).to_have_count(0)  # the form was reset
    page.screenshot(path=str(screenshot_dir / "import_partial.png"), full_page=True)
    assert Item.objects.filter(project=owned_project).count() == 3


def test_a_failed_import_is_red_and_refreshes_recent_imports(page: Page, owned_project, screenshot_dir):
    url = f"/projects/{owned_project.pk}/import/"
    log_in(page, "owner", url)
    expect(page.locator("#recent-imports")).to_contain_text("No imports yet.")
    data = b'{"text": "fine"}\n{"text": "broken\n'
    page.set_input_files("#id_file", files=[{"name": "bad.jsonl", "mimeType": "application/x-ndjson", "buffer": data}])
    page.get_by_role("button", name="Upload and import").click()
    job = page.locator("#import-status .import-job")
    expect(job).to_contain_text("Import failed.")
    expect(job).to_contain_text("bad.jsonl line 2: invalid JSON: Unterminated string starting at column 10")
    assert job.locator(".progress").get_attribute("aria-valuetext") == "Failed"
    fill = job.locator(".progress > span")
    colour = fill.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(201, 42, 42)"  # --bad, not the success colour
    expect(page.locator("#recent-imports")).to_contain_text("bad.jsonl")
    expect(page.locator("#recent-imports .import-failed")).to_have_count(1)
    page.screenshot(path=str(screenshot_dir / "import_failed.png"), full_page=True)
