"""The noise scan's result on the quality page says which vote weight it ranked with and on how many audits."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from annotation.models import NoiseScan, ScanStatus
from annotation.quality.jobs import noise_scan_job
from tests.annotation.quality.test_views import audited_corpus

pytestmark = pytest.mark.browser


def test_a_scan_calibrated_on_audits_says_so_on_the_quality_page(
    page: Page, transactional_db, settings, project, annotator, annotator2, reviewer, screenshot_dir
):
    settings.LABELLOOP_EMBEDDER = "tests.annotation.quality.test_views.hashing_embed"
    audited_corpus(project, annotator, annotator2, reviewer, audits=40, overturned=8)
    scan = NoiseScan.objects.create(project=project, created_by=reviewer)
    noise_scan_job(scan.pk)
    scan.refresh_from_db()
    assert scan.status == ScanStatus.SUCCEEDED, scan.message

    page.goto(f"/accounts/login/?next=/projects/{project.pk}/quality/")
    page.get_by_label("Username").fill("reviewer")
    page.get_by_label("Password").fill("pw-reviewer")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**/projects/{project.pk}/quality/")
    calibration = page.locator("#scan-calibration")
    expect(calibration).to_contain_text("Calibrated on 40 audited items, 8 overturned")
    # the explanations are folded away until asked for
    how = calibration.get_by_text("Average precision per weight")
    expect(how).to_be_hidden()
    calibration.get_by_text("How the vote weight is learnt").click()
    expect(how).to_be_visible()
    expect(page.locator("#scan-adaptive")).to_contain_text("What to expect here")  # a new project routes adaptively
    page.locator("#noise-scan").screenshot(path=str(screenshot_dir / "noise_scan_calibrated.png"))

    page.goto(f"/projects/{project.pk}/quality/scans/{scan.pk}/flags/")
    expect(page.locator("#flag-counts")).to_contain_text("calibrated on 40 audited items, 8 overturned")
    page.screenshot(path=str(screenshot_dir / "noise_flags_calibrated.png"))
