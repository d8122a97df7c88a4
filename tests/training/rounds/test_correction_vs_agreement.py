"""A rater's correction against a label two annotators agreed on goes to review; it never overrides them silently.

The rule lives in annotation's review services (`proposals_apply`, re-checked under lock), and the round's plan
shows it before anything is written. The test split stays sacred: a correction there is held, not reviewed.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import (
    Decision,
    DecisionSource,
    Item,
    ItemSplit,
    ItemStatus,
    Project,
    ReviewReason,
    ReviewStatus,
    ReviewTask,
    Split,
)
from annotation.review.services import ValueProposal, proposals_apply
from tests.fixtures.people import acknowledge_guidelines
from tests.fixtures.reviews import annotate_pair
from tests.fixtures.rounds import approve, output_row, rating_row, run_row
from training.models import Verdict
from training.rounds.options import plan_options_parse
from training.rounds.selectors import round_plan
from training.rounds.services import round_advance


@pytest.fixture
def agreed(project, annotator, annotator2) -> Item:
    """An item both annotators labelled positive: its agreement is its final label."""
    Project.objects.filter(pk=project.pk).update(audit_rate=0.0)
    project.refresh_from_db()
    acknowledge_guidelines(project, annotator, annotator2)
    item = annotate_pair(project, annotator, annotator2, "positive", "positive")
    assert Decision.objects.get(item=item).source == DecisionSource.AGREEMENT
    return item


def correction(item: Item, rater) -> ValueProposal:
    return ValueProposal(
        item_id=item.pk,
        value={"label": "negative"},
        reason="Rating 1 corrected the model.",
        decide=True,
        source=DecisionSource.MODEL_CORRECTED,
        reviewer_id=rater.pk,
    )


def final(item: Item) -> dict:
    return Decision.objects.filter(item=item).order_by("-created_at", "-id").first().value


def test_a_correction_against_an_agreement_opens_a_review_and_keeps_the_label(project, agreed, reviewer):
    [outcome] = proposals_apply(project=project, proposals=[correction(agreed, reviewer)])

    assert (outcome.action, outcome.review_reason) == ("review", ReviewReason.CORRECTION)
    assert final(agreed) == {"label": "positive"}  # the agreement stands until a reviewer decides
    task = ReviewTask.objects.get(item=agreed, status=ReviewStatus.OPEN)
    assert task.reasons == [ReviewReason.CORRECTION] and task.suggested_value == {"label": "negative"}
    agreed.refresh_from_db()
    assert agreed.status == ItemStatus.IN_REVIEW


def test_a_correction_without_an_agreement_still_becomes_the_final_label(project, owner, reviewer):
    """One annotator's label (or an import) is no agreement: the correction applies as before."""
    item = Item.objects.filter(project=project).first()
    approve(item, {"label": "positive"}, source=DecisionSource.IMPORT)
    [outcome] = proposals_apply(project=project, proposals=[correction(item, reviewer)])
    assert outcome.action == "decide" and final(item) == {"label": "negative"}


def test_a_correction_of_an_agreed_test_item_is_held_not_reviewed(project, agreed, reviewer):
    ItemSplit.objects.create(item=agreed, split=Split.TEST)
    [outcome] = proposals_apply(project=project, proposals=[correction(agreed, reviewer)])
    assert outcome.action == "held"
    assert not ReviewTask.objects.filter(item=agreed).exists() and final(agreed) == {"label": "positive"}


def test_the_round_plan_shows_it_going_to_review_and_the_round_sends_it_there(project, owner, agreed, reviewer):
    run = run_row(project, owner)
    rating_row(output_row(run, agreed, "positive"), reviewer, verdict=Verdict.WRONG, correction={"label": "negative"})
    options = plan_options_parse(project=project, data={})

    plan = round_plan(project=project, options=options).summary()
    assert (plan["corrections"]["decide"], plan["corrections"]["review"]) == (0, 1)
    [row] = plan["corrections"]["examples"]
    assert row["action"] == "review" and "annotators agreed on positive" in row["reason"]

    result = round_advance(project=project, user=owner, options=options, round_number=1)
    assert result.applied and final(agreed) == {"label": "positive"}
    task = ReviewTask.objects.get(item=agreed, status=ReviewStatus.OPEN)
    assert task.reasons == [ReviewReason.CORRECTION]


def test_the_review_page_shows_the_reason_and_the_raters_suggestion(project, agreed, reviewer, client):
    proposals_apply(project=project, proposals=[correction(agreed, reviewer)])
    client.force_login(reviewer)
    page = client.get(reverse("review-queue", args=[project.pk]) + "?reason=correction").content.decode()
    assert ReviewReason.CORRECTION.label.replace("'", "&#x27;") in page
    assert 'id="review-suggestion"' in page and "negative" in page
    assert "correction vs agreement" in page  # the queue's chip and filter


def test_a_correction_against_the_owners_overrule_opens_a_review_too(project, annotator, annotator2, reviewer, owner):
    """The owner's overrule stays final against a single rater's correction: a reviewer weighs them, and the model's
    own disagreement never proposes the item at all (the reviewer helper's finding on this stop's overrule)."""
    from annotation.review.services import item_overrule, review_decide

    Project.objects.filter(pk=project.pk).update(audit_rate=0.0)
    project.refresh_from_db()
    acknowledge_guidelines(project, annotator, annotator2)
    item = annotate_pair(project, annotator, annotator2, "positive", "negative")
    review_decide(reviewer=reviewer, task=ReviewTask.objects.get(item=item), value={"label": "positive"})
    item_overrule(owner=owner, item=Item.objects.get(pk=item.pk), value={"label": "neutral"}, reason="sarcasm")
    [outcome] = proposals_apply(project=project, proposals=[correction(item, reviewer)])
    assert (outcome.action, outcome.review_reason) == ("review", ReviewReason.CORRECTION)
    assert final(item) == {"label": "neutral"}
