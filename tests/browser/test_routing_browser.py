"""The owner reads the routing plan on the quality page, then switches adaptive routing on in the settings."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from annotation.models import Project, RoutingPolicy
from tests.fixtures.people import acknowledge_guidelines
from tests.fixtures.reviews import submit

pytestmark = pytest.mark.browser


def log_in(page: Page, username: str, next_url: str) -> None:
    page.goto(f"/accounts/login/?next={next_url}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-" + username)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{next_url}")


@pytest.mark.django_db(transaction=True)
def test_owner_reads_the_plan_and_switches_adaptive_routing_on(page, project, annotator, annotator2, screenshot_dir):
    Project.objects.filter(pk=project.pk).update(audit_rate=0.0)
    acknowledge_guidelines(project, annotator, annotator2)
    for first, second in [("positive", "positive"), ("positive", "negative"), ("neutral", "neutral")]:
        submit(annotator, project, first)
        submit(annotator2, project, second)
    log_in(page, "owner", f"/projects/{project.pk}/quality/")
    plan = page.locator("#routing-plan")
    plan.scroll_into_view_if_needed()
    assert "3 items" in plan.inner_text()
    cells = page.locator("#routing-plan-table tbody td").all_inner_texts()
    assert sum(int(c) for c in cells[:3]) == 3
    plan.screenshot(path=str(screenshot_dir / "routing-plan.png"))
    page.goto(f"/projects/{project.pk}/settings/")
    page.get_by_label("Routing").select_option("adaptive")
    page.get_by_label("Budget (judgements per item)").fill("2.2")
    page.locator("#annotation").screenshot(path=str(screenshot_dir / "routing-settings.png"))
    page.locator("#annotation").get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    project.refresh_from_db()
    assert (project.routing_policy, project.routing_budget) == (RoutingPolicy.ADAPTIVE, 2.2)
