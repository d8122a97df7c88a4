"""Jobs a person cannot start yet say why on the page, before anything is queued: the noise scan's button is
disabled with what is missing, and becomes a queued scan that shows its place once the data is there (and that can be
cancelled from its card)."""

from __future__ import annotations

import django_rq
import pytest
from playwright.sync_api import Page, expect

from annotation.models import Decision, DecisionSource, Item, ItemStatus, NoiseScan
from annotation.projects.services import project_create
from tests.fixtures.people import add_items, make_user

pytestmark = pytest.mark.browser


def approve(items, labels) -> None:
    for item, label in zip(items, labels, strict=True):
        Decision.objects.create(item=item, value={"label": label}, source=DecisionSource.IMPORT)
    Item.objects.filter(pk__in=[item.pk for item in items]).update(status=ItemStatus.APPROVED)


def test_the_noise_scan_button_explains_what_is_missing_then_the_scan_shows_its_place(
    page: Page, transactional_db, screenshot_dir
):
    owner = make_user("owner")
    project = project_create(owner=owner, name="Reviews", labels=["good", "bad"])
    approve(add_items(project, [f"fine thing {i}" for i in range(4)]), ["good"] * 4)
    queue = django_rq.get_queue("quality", commit_mode="auto")
    queue.empty()

    page.goto(f"/accounts/login/?next=/projects/{project.pk}/quality/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill("pw-owner")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**/projects/{project.pk}/quality/")
    button = page.locator("#start-scan")
    expect(button).to_be_disabled()
    expect(page.locator("#scan-blocker")).to_contain_text("at least 50 approved items outside the test split")
    expect(page.locator("#scan-blocker")).to_contain_text("there are 4")
    page.locator("#noise-scan").screenshot(path=str(screenshot_dir / "noise_scan_blocked.png"))
    assert not NoiseScan.objects.exists() and queue.count == 0

    approve(add_items(project, [f"good thing {i}" for i in range(26)]), ["good"] * 26)
    approve(add_items(project, [f"awful thing {i}" for i in range(20)]), ["bad"] * 20)
    queue.enqueue("annotation.quality.jobs.noise_scan_job", 999_999, job_id="another-projects-scan")
    page.reload()
    expect(button).to_be_enabled()
    expect(page.locator("#scan-model")).to_have_value("linear")  # the quick model unless the reviewer picks the other
    page.locator("#noise-scan").screenshot(path=str(screenshot_dir / "noise_scan_ready.png"))
    button.click()
    expect(page.locator("#scan-queue")).to_contain_text("Queued — 1 job ahead of it in the quality queue")
    expect(button).to_be_disabled()  # one scan at a time, said on the page (after the next load)
    assert NoiseScan.objects.get().status == "queued"
    page.locator("#noise-scan").screenshot(path=str(screenshot_dir / "noise_scan_queued.png"))

    # waiting behind another job: cancelled from its card (after a confirm), and the button is free again
    dialogs: list[str] = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.locator("#cancel-scan").click()
    expect(page.locator(".scan-state")).to_have_text("Cancelled")
    expect(page.locator(".scan-message")).to_have_text("Cancelled by owner")
    assert dialogs and dialogs[0].startswith("Cancel scan")
    expect(page.locator("#cancel-scan")).to_have_count(0)
    expect(button).to_be_enabled()
    page.locator("#noise-scan").screenshot(path=str(screenshot_dir / "noise_scan_cancelled.png"))
    assert NoiseScan.objects.get().status == "cancelled"
    queue.empty()
