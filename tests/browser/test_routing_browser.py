"""Routing in the browser: a new project is adaptive unless its owner picks fixed on the create page; the quality
page and the review queue of an adaptive project say why an item is or is not in review; the owner of a fixed
project reads the routing plan, then switches adaptive routing on in the settings."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from annotation.models import Project, RoutingPolicy
from tests.fixtures.people import acknowledge_guidelines, fixed_routing
from tests.fixtures.reviews import submit

pytestmark = pytest.mark.browser


def log_in(page: Page, username: str, next_url: str) -> None:
    page.goto(f"/accounts/login/?next={next_url}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-" + username)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{next_url}")


@fixed_routing  # a project made before adaptive routing was the default
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


@pytest.mark.django_db(transaction=True)
def test_a_new_project_is_adaptive_unless_the_owner_picks_fixed(page, owner, screenshot_dir):
    log_in(page, "owner", "/projects/new/")
    routing = page.get_by_label("Routing")
    expect(routing).to_have_value("adaptive")
    expect(page.get_by_label("Budget (judgements per item)")).to_have_attribute(
        "placeholder", "2.5, or the overlap + 0.5"
    )
    expect(page.locator("#routing")).to_contain_text("Fixed (and other task types): every disagreement or unsure")
    page.screenshot(path=str(screenshot_dir / "project-create.png"), full_page=True)
    page.get_by_label("Project name").fill("Toxicity")
    page.get_by_label("Labels").fill("toxic\nfine")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name="Toxicity")).to_be_visible()
    created = Project.objects.get(name="Toxicity")
    assert (created.routing_policy, created.routing_budget) == (RoutingPolicy.ADAPTIVE, 2.5)

    page.goto("/projects/new/")
    page.get_by_label("Project name").fill("Toxicity, the old way")
    page.get_by_label("Labels").fill("toxic, fine")
    routing.select_option("fixed")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name="Toxicity, the old way")).to_be_visible()
    assert Project.objects.get(name="Toxicity, the old way").routing_policy == RoutingPolicy.FIXED


@pytest.mark.django_db(transaction=True)
def test_an_adaptive_projects_quality_page_and_queue_say_why_items_are_in_review(
    page, project, annotator, annotator2, reviewer, screenshot_dir
):
    assert project.routing_policy == RoutingPolicy.ADAPTIVE  # the fixture is made as a new project is
    Project.objects.filter(pk=project.pk).update(audit_rate=0.0)
    acknowledge_guidelines(project, annotator, annotator2)
    for first, second in [("positive", "positive"), ("positive", "negative"), ("neutral", "neutral")]:
        submit(annotator, project, first)
        submit(annotator2, project, second)
    log_in(page, "owner", f"/projects/{project.pk}/quality/")
    why = page.locator("#routing-why")
    why.scroll_into_view_if_needed()
    expect(why).to_contain_text("Routing in force: adaptive, within 2.5 judgements per item")
    expect(why).to_contain_text("at least 90 % sure is accepted on it and never reaches review")
    expect(page.locator("#routing-plan")).to_contain_text("3 items")
    page.locator("#routing-plan").screenshot(path=str(screenshot_dir / "routing-plan-adaptive.png"))
    page.screenshot(path=str(screenshot_dir / "quality-adaptive.png"), full_page=True)
    # each person's weight in the vote, and the accuracy chart with the table's intervals, not bare percentages
    expect(page.locator("#vote-weights-table")).to_contain_text("annotator1")
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-accuracy')")
    drawn = page.evaluate("() => Chart.getChart('chart-accuracy').data.datasets.map(d => d.label)")
    assert drawn == ["Accuracy against the final labels", "95 % interval"]
    page.locator("#chart-accuracy").scroll_into_view_if_needed()
    page.locator("#chart-accuracy").screenshot(path=str(screenshot_dir / "accuracy-chart.png"))

    page.context.clear_cookies()
    log_in(page, "reviewer", f"/projects/{project.pk}/review/")
    expect(page.locator("#review-routing")).to_contain_text("Adaptive routing (2.5 judgements per item): an item")
    note = page.locator("#review-routing-note")  # the one task: the 1-1 split, no third annotator to ask
    expect(note).to_contain_text("the weighted vote of its judgements")
    expect(note).to_contain_text("Your label joins the vote")
    expect(page.locator("#review-suggestion")).to_contain_text("weighted vote so far: a tie (no label leads)")
    page.screenshot(path=str(screenshot_dir / "review-adaptive.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_an_agreement_the_weighted_vote_doubts_shows_as_doubt_in_the_queue(
    page, project, annotator, annotator2, reviewer, screenshot_dir, settings
):
    """Two unmeasured annotators agree against a sure model: the item goes to review as "doubt" (not as an audit)."""
    from annotation.models import Item, ReviewReason, ReviewStatus, ReviewTask
    from annotation.review import routing
    from tests.annotation.review import test_routing

    settings.LABELLOOP_ROUTING_MODEL = "tests.annotation.review.test_routing.fake_model"
    Project.objects.filter(pk=project.pk).update(audit_rate=0.0, routing_budget=2.2)  # a reviewer, not a third
    acknowledge_guidelines(project, annotator, annotator2)
    item = Item.objects.filter(project=project).order_by("pk").first()
    test_routing.MODEL_SAYS.clear()
    test_routing.MODEL_SAYS[item.pk] = routing.ModelVote("negative", 0.95)
    submit(annotator, project, "positive")
    submit(annotator2, project, "positive")
    assert ReviewTask.objects.get(item=item, status=ReviewStatus.OPEN).reasons == [ReviewReason.DOUBT]

    log_in(page, "reviewer", f"/projects/{project.pk}/review/")
    expect(page.locator("#review-filters .reason-doubt")).to_contain_text("1")
    expect(page.locator("span.reason.reason-doubt").first).to_have_text("vote in doubt")
    expect(page.locator("#review-routing-note")).to_contain_text("whether or not the annotators agreed")
    page.screenshot(path=str(screenshot_dir / "review-doubt.png"), full_page=True)
