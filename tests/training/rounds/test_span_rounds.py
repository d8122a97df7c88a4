"""The next round of a span project: a span run's per-item uncertainty (1 − its least sure word's tag probability)
orders the annotation queue as classification's entropy does; test-split items are never moved up or pre-labelled.

Runs and outputs are rows made directly (tests/fixtures/rounds.py): training is not the point here."""

from __future__ import annotations

import pytest

from annotation.annotate import services as annotate_services
from annotation.models import Decision, Item, ItemSplit, ReviewReason, ReviewStatus, ReviewTask, Split
from tests.fixtures.api import api_as
from tests.fixtures.pages import url
from tests.fixtures.people import acknowledge_guidelines, add_items
from tests.fixtures.rounds import approve, rating_row, run_row
from tests.fixtures.spans import span_project
from training.models import ModelOutput, TrainingRun
from training.rounds.options import PlanOptions, plan_options_parse
from training.rounds.selectors import (
    NO_OUTPUTS_NOTE,
    NO_RUN_NOTE,
    QUEUE_TEST_NOTE,
    SPAN_OLDER_NOTE,
    SPAN_SCORE_NAME,
    SPAN_SCORE_NOTE,
    round_plan,
)
from training.rounds.services import round_advance

# Item text → the span run's uncertainty about it. "Sure" texts come last, "unsure" ones first.
UNCERTAINTY = {
    "Sure: Ada met Bob.": 0.02,
    "Unsure: Grace Hopper in Arlington.": 0.91,
    "Middling: Turing at Bletchley.": 0.40,
    "Unsure too: Noether in Erlangen.": 0.77,
    "Sure too: Paris is in France.": 0.05,
}
HELD_OUT = "Held out: Lamarr in Vienna."  # a test-split item sent back to annotators, the run's least sure


def _options(project, **changes) -> PlanOptions:
    return plan_options_parse(project=project, data={k: str(v) for k, v in changes.items()})


def _output(run: TrainingRun, item: Item, uncertainty: float) -> ModelOutput:
    spans = [{"start": 0, "end": item.text.index(":"), "label": "PER"}]
    return ModelOutput.objects.create(
        run=run, item=item, value={"spans": spans}, confidence=0.9, uncertainty=uncertainty,
        probabilities={"least_word": 1.0 - uncertainty},
    )


@pytest.fixture
def span_round(owner, annotator):
    """A span project whose only open items are UNCERTAINTY's and HELD_OUT, and a span run that predicted them."""
    project = span_project(owner, [annotator], overlap=1)
    Item.objects.filter(project=project).update(is_open=False, status="approved")  # the fixture's three texts
    made = {item.text: item for item in add_items(project, [*UNCERTAINTY, HELD_OUT])}
    ItemSplit.objects.create(item=made[HELD_OUT], split=Split.TEST)
    run = run_row(project, owner, task="spans")
    for text, uncertainty in UNCERTAINTY.items():
        _output(run, made[text], uncertainty)
    _output(run, made[HELD_OUT], 0.99)
    return project, run, made


def _by_uncertainty(made: dict[str, Item]) -> list[int]:
    return [made[text].pk for text in sorted(UNCERTAINTY, key=UNCERTAINTY.get, reverse=True)]


@pytest.mark.parametrize("order", ["entropy", "margin"])
def test_the_items_the_span_run_is_least_sure_of_come_first(span_round, order):
    project, run, made = span_round
    plan = round_plan(project=project, options=_options(project, queue_order=order, random_share=0))
    summary = plan.summary()
    queue = summary["queue"]
    assert [int(pk) for pk in plan.queue.ids[:5]] == _by_uncertainty(made)
    assert queue["scored"] == 5 and queue["score_name"] == SPAN_SCORE_NAME
    assert [row["score"] for row in queue["examples"][:5]] == sorted(UNCERTAINTY.values(), reverse=True)
    assert SPAN_SCORE_NOTE.format(run=run.pk) in summary["notes"]


def test_a_test_split_item_is_never_moved_up_nor_pre_labelled(span_round, owner):
    project, _, made = span_round
    held = made[HELD_OUT]
    plan = round_plan(project=project, options=_options(project, random_share=0, prelabels=1))
    summary = plan.summary()
    assert int(plan.queue.ids[-1]) == held.pk, "unscored: after every scored item, although the run is least sure"
    assert summary["queue"]["test_held"] == 1 and summary["queue"]["scored"] == 5
    assert QUEUE_TEST_NOTE.format(count=1) in summary["notes"]
    row = next(row for row in summary["queue"]["examples"] if row["item_id"] == held.pk)
    assert row["score"] is None and row["test_split"] is True and summary["queue"]["unscored"] == 0
    assert summary["prelabels"]["count"] == 5  # not the test item's

    result = round_advance(project=project, user=owner, options=_options(project, random_share=0, prelabels=1))
    assert result.applied and result.closed.changes["prelabels"] == 5
    held.refresh_from_db()
    assert held.prelabel is None
    assert held.priority < min(Item.objects.filter(pk__in=_by_uncertainty(made)).values_list("priority", flat=True))
    for text in UNCERTAINTY:
        assert Item.objects.get(pk=made[text].pk).prelabel["spans"][0]["label"] == "PER"


def test_after_the_round_annotators_get_the_least_sure_item_first(span_round, owner, annotator):
    project, _, made = span_round
    round_advance(project=project, user=owner, options=_options(project, random_share=0))
    acknowledge_guidelines(project, annotator)
    claim = annotate_services.claim_next(annotator=annotator, project=project).claim
    assert claim is not None and claim.item_id == made["Unsure: Grace Hopper in Arlington."].pk


def test_a_span_project_without_a_run_says_so(owner, annotator):
    project = span_project(owner, [annotator])
    summary = round_plan(project=project, options=_options(project)).summary()
    assert NO_RUN_NOTE in summary["notes"]
    assert summary["queue"]["order"] == "random" and summary["queue"]["scored"] == 0


def test_a_span_run_without_outputs_on_the_queue_says_so(owner, annotator):
    project = span_project(owner, [annotator])
    run = run_row(project, owner, task="spans")
    summary = round_plan(project=project, options=_options(project)).summary()
    assert NO_OUTPUTS_NOTE.format(run=run.pk) in summary["notes"]
    assert summary["queue"]["scored"] == 0 and summary["queue"]["unscored"] == 3


def test_the_plan_page_and_api_show_the_span_scores(span_round, client, owner):
    project, _, made = span_round
    client.force_login(owner)
    page = client.get(url("round-plan", project.pk), {"random_share": "0"}).content.decode()
    assert f"{SPAN_SCORE_NAME} 0.910" in page
    assert "test-split item(s) waiting for annotators get no score from the model" in page
    body = api_as(owner).get(f"/api/projects/{project.pk}/rounds/plan/", {"random_share": 0}).json()
    assert body["queue"]["examples"][0]["item_id"] == made["Unsure: Grace Hopper in Arlington."].pk
    assert body["queue"]["score_name"] == SPAN_SCORE_NAME and body["queue"]["test_held"] == 1


# --- Final spans the span run confidently contradicts -----------------------------------------------------


def _approved(project, text: str, spans: list[dict], split: str | None = None) -> Item:
    item = add_items(project, [text])[0]
    approve(item, {"spans": spans})
    if split:
        ItemSplit.objects.create(item=item, split=split)
    return item


def test_final_spans_a_sure_span_run_contradicts_go_to_review_but_never_a_test_item(owner, annotator):
    project = span_project(owner, [annotator])
    run = run_row(project, owner, task="spans")
    whole = {"start": 0, "end": 12, "label": "PER"}
    part = {"start": 0, "end": 3, "label": "PER"}
    contradicted = _approved(project, "Ada Lovelace wrote notes.", [part])
    agreed = _approved(project, "Ada Lovelace read notes.", [whole])
    unsure = _approved(project, "Ada Lovelace kept notes.", [part])
    held = _approved(project, "Ada Lovelace lost notes.", [part], split=Split.TEST)
    for item, uncertainty in ((contradicted, 0.04), (agreed, 0.01), (unsure, 0.30), (held, 0.02)):
        ModelOutput.objects.create(
            run=run, item=item, value={"spans": [whole]}, confidence=0.97, uncertainty=uncertainty,
            probabilities={"least_word": 1.0 - uncertainty},
        )

    plan = round_plan(project=project, options=_options(project, disagreement_confidence=0.9), full=True)
    assert [p.item.pk for p in plan.label_errors] == [contradicted.pk]
    proposal = plan.label_errors[0]
    assert proposal.value == {"spans": [whole]} and proposal.review_reason == ReviewReason.MODEL
    assert "every word's tag at 0.96 or more" in proposal.reason and "“Ada (PER)”" in proposal.reason
    summary = plan.summary()
    assert summary["test_split"]["count"] == 1 and summary["test_split"]["model"] == 1
    assert str(held.pk) not in str(summary["label_errors"]) and "lost notes" not in str(summary)

    result = round_advance(project=project, user=owner, options=_options(project, disagreement_confidence=0.9))
    assert result.closed.changes["review_model"] == 1 and result.closed.changes["test_held"] == 1
    task = ReviewTask.objects.get(item=contradicted, status=ReviewStatus.OPEN)
    assert task.suggested_value == {"spans": [whole]} and task.reasons == [ReviewReason.MODEL]
    assert not ReviewTask.objects.filter(item=held).exists()
    assert Decision.objects.filter(item=held).count() == 1, "the test item's final spans stay as people decided"


def test_spans_rated_correct_against_the_final_spans_go_to_review_but_never_a_test_item(owner, reviewer):
    project = span_project(owner, [], reviewer)
    run = run_row(project, owner, task="spans")
    whole = {"start": 0, "end": 12, "label": "PER"}
    rated = _approved(project, "Ada Lovelace wrote notes.", [{"start": 0, "end": 3, "label": "PER"}])
    held = _approved(project, "Ada Lovelace lost notes.", [{"start": 0, "end": 3, "label": "PER"}], split=Split.TEST)
    for item in (rated, held):
        output = ModelOutput.objects.create(
            run=run, item=item, value={"spans": [whole]}, confidence=0.5, uncertainty=0.6,
            probabilities={"least_word": 0.4},
        )
        rating_row(output, reviewer, verdict="correct")
    plan = round_plan(project=project, options=_options(project), full=True)
    assert [(p.item.pk, p.review_reason, p.value) for p in plan.label_errors] == [
        (rated.pk, ReviewReason.RATING, {"spans": [whole]})
    ]
    assert "the final spans are “Ada (PER)”" in plan.label_errors[0].reason
    assert plan.summary()["test_split"]["rating"] == 1


def test_span_outputs_stored_before_the_least_sure_word_neither_order_nor_flag(span_round, client, owner):
    """Older outputs held 1 - the mean span confidence (0.0 with no span): not the least sure word's."""
    project, run, made = span_round
    older = made[next(iter(UNCERTAINTY))]
    ModelOutput.objects.filter(run=run, item=older).update(probabilities=None, uncertainty=0.0)
    plan = round_plan(project=project, options=_options(project, random_share=0))
    summary = plan.summary()
    assert summary["queue"]["scored"] == 4 and int(plan.queue.ids[0]) != older.pk
    assert SPAN_OLDER_NOTE.format(run=run.pk, count=1) in summary["notes"]
    row = next(r for r in summary["queue"]["examples"] if r["item_id"] == older.pk)
    assert row["older_output"] and row["score"] is None  # the plan's row says to predict again, not "no output"
    client.force_login(owner)
    page = client.get(url("round-plan", project.pk), {"random_share": "0"}).content.decode()
    assert "output predicted before the least-sure-word mark: predict again" in page
