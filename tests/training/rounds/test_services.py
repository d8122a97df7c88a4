"""Rounds: the plan of the next round and applying it (training/rounds/).

Runs, outputs and ratings are rows made directly (tests/training/rounds_fixtures.py): training is not the
point here. Every step of the plan is checked on what it writes, and the plan itself writes nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from annotation.datasets import services as snapshots
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
    Role,
    SnapshotItem,
    Split,
    TaskType,
)
from annotation.projects.services import guideline_current, guideline_publish, membership_set, project_create
from annotation.review.services import ValueProposal, proposals_apply, review_decide, review_task_open
from core.errors import ServiceError
from tests.fixtures.people import add_items, make_user
from tests.fixtures.rounds import approve, output_row, rating_row, run_row
from training.models import Round, RoundChange, Verdict
from training.rounds.charts import rounds_worse
from training.rounds.options import PlanOptions, plan_options_default, plan_options_parse
from training.rounds.ordering import margin, random_slots
from training.rounds.selectors import round_current, round_list, round_plan
from training.rounds.services import round_advance, round_open

HTMX = {"HTTP_HX_REQUEST": "true"}


def items(project: Project) -> list[Item]:
    return list(Item.objects.filter(project=project).order_by("pk"))


def options(project: Project, **changes) -> PlanOptions:
    return plan_options_parse(project=project, data={k: str(v) for k, v in changes.items()})


def state(project: Project) -> dict:
    """Everything the plan could change, to compare before and after."""
    return {
        "decisions": list(Decision.objects.filter(item__project=project).values_list("pk", "value")),
        "tasks": list(ReviewTask.objects.filter(project=project).values_list("pk", "status", "reasons")),
        "items": list(Item.objects.filter(project=project).values_list("pk", "status", "priority", "prelabel")),
        "rounds": list(Round.objects.filter(project=project).values_list("pk", "closed_at", "figures")),
        "changes": RoundChange.objects.count(),
        "project": Project.objects.filter(pk=project.pk).values("queue_order", "show_prelabels").get(),
    }


# --- Rounds ---------------------------------------------------------------------------------------


def test_round_one_opens_lazily_with_the_current_guidelines(project):
    shown = round_current(project=project)
    assert shown.pk is None and shown.number == 1 and shown.guideline_version == guideline_current(project=project)
    assert [r.number for r in round_list(project=project)] == [1]
    assert not Round.objects.filter(project=project).exists(), "reading the rounds writes none"
    first = round_open(project=project)
    assert first.pk is not None and first.number == 1 and first.closed_at is None
    assert first.guideline_version == guideline_current(project=project)
    assert round_open(project=project).pk == first.pk == round_current(project=project).pk


# --- Corrections -----------------------------------------------------------------------------------


def test_a_correction_becomes_a_decision_and_enters_the_next_snapshot(project, owner, reviewer):
    labelled, unlabelled, *_ = items(project)
    approve(labelled, {"label": "positive"})
    run = run_row(project, owner)
    wrong = rating_row(
        output_row(run, labelled, "positive"), reviewer, verdict=Verdict.WRONG, correction={"label": "negative"}
    )
    fresh = rating_row(
        output_row(run, unlabelled, "neutral"), reviewer, verdict=Verdict.WRONG, correction={"label": "positive"}
    )
    before = snapshots.snapshot_create(project=project, user=owner, name="before", seed=1)

    result = round_advance(project=project, user=owner, options=options(project), round_number=1)

    assert result.applied and result.opened.number == 2 and result.closed.closed_at is not None
    for item, rating, value in ((labelled, wrong, "negative"), (unlabelled, fresh, "positive")):
        decision = Decision.objects.filter(item=item).order_by("-created_at", "-id").first()
        assert decision.source == DecisionSource.MODEL_CORRECTED
        assert decision.value == {"label": value} and decision.reviewer == reviewer
        assert f"Rating {rating.pk}" in decision.reason and f"run {run.pk}" in decision.reason
        item.refresh_from_db()
        assert item.status == ItemStatus.APPROVED and not item.is_open
        change = RoundChange.objects.get(item=item)
        assert change.kind == RoundChange.Kind.CORRECTION and change.rating == rating and change.round == result.closed
    assert result.closed.changes["correction"] == 2
    # The old decision stays in the history; the snapshot after the round carries the corrections.
    assert Decision.objects.filter(item=labelled).count() == 2
    after = snapshots.snapshot_create(project=project, user=owner, name="after", seed=1)
    rows = {row.item_id: row for row in SnapshotItem.objects.filter(snapshot=after)}
    assert rows[labelled.pk].value == {"label": "negative"}
    assert rows[labelled.pk].provenance["source"] == DecisionSource.MODEL_CORRECTED
    assert rows[unlabelled.pk].value == {"label": "positive"}
    assert unlabelled.pk not in set(SnapshotItem.objects.filter(snapshot=before).values_list("item_id", flat=True))


def test_a_correction_equal_to_the_final_value_changes_nothing(project, owner, reviewer):
    item = items(project)[0]
    approve(item, {"label": "negative"})
    run = run_row(project, owner)
    rating_row(output_row(run, item, "positive"), reviewer, verdict=Verdict.WRONG, correction={"label": "negative"})
    plan = round_plan(project=project, options=options(project))
    assert plan.corrections == []
    round_advance(project=project, user=owner, options=options(project))
    assert Decision.objects.filter(item=item).count() == 1


def test_a_reviewer_decision_after_the_rating_is_never_overwritten(project, owner, reviewer):
    decided, waiting, *_ = items(project)
    run = run_row(project, owner)
    rating_row(output_row(run, decided, "positive"), reviewer, verdict=Verdict.WRONG, correction={"label": "negative"})
    rating_row(output_row(run, waiting, "positive"), reviewer, verdict=Verdict.WRONG, correction={"label": "neutral"})
    later = approve(decided, {"label": "positive"}, reviewer=owner, source=DecisionSource.REVIEWER)
    review_task_open(item=waiting, reasons=[ReviewReason.DISAGREEMENT])

    round_advance(project=project, user=owner, options=options(project))

    assert Decision.objects.filter(item=decided).order_by("-created_at", "-id").first() == later
    assert not Decision.objects.filter(item=waiting).exists()
    decided.refresh_from_db()
    assert decided.status == ItemStatus.IN_REVIEW
    task = ReviewTask.objects.get(item=decided, status=ReviewStatus.OPEN)
    assert task.reasons == [ReviewReason.RATING] and task.suggested_value == {"label": "negative"}
    merged = ReviewTask.objects.get(item=waiting, status=ReviewStatus.OPEN)
    assert ReviewReason.RATING in merged.reasons and ReviewReason.DISAGREEMENT in merged.reasons
    assert RoundChange.objects.filter(kind=RoundChange.Kind.REVIEW).count() == 2


def test_only_the_latest_rating_of_a_rater_counts(project, owner, reviewer):
    item = items(project)[0]
    run = run_row(project, owner)
    output = output_row(run, item, "positive")
    rating_row(output, reviewer, verdict=Verdict.WRONG, correction={"label": "negative"})
    rating_row(output, reviewer, verdict=Verdict.CORRECT)  # changed their mind: appended, the newest counts
    assert round_plan(project=project, options=options(project)).corrections == []


# --- Possible label errors -------------------------------------------------------------------------


def test_confident_disagreements_and_contradicting_ratings_go_to_review(project, owner, reviewer):
    sure, unsure, rated, agreed, _ = items(project)
    for item in (sure, unsure, rated, agreed):
        approve(item, {"label": "positive"})
    run = run_row(project, owner)
    output_row(run, sure, probabilities={"negative": 0.95, "positive": 0.03, "neutral": 0.02})
    output_row(run, unsure, probabilities={"negative": 0.6, "positive": 0.3, "neutral": 0.1})
    output_row(run, agreed, probabilities={"positive": 0.99, "negative": 0.01})
    rating = rating_row(
        output_row(run, rated, probabilities={"neutral": 0.55, "positive": 0.45}), reviewer, verdict=Verdict.CORRECT
    )

    plan = round_plan(project=project, options=options(project, disagreement_confidence=0.9))
    assert plan.label_error_count == 2
    result = round_advance(project=project, user=owner, options=options(project, disagreement_confidence=0.9))

    task = ReviewTask.objects.get(item=sure, status=ReviewStatus.OPEN)
    assert task.reasons == [ReviewReason.MODEL] and task.suggested_value == {"label": "negative"}
    by_rating = ReviewTask.objects.get(item=rated, status=ReviewStatus.OPEN)
    assert by_rating.reasons == [ReviewReason.RATING] and by_rating.suggested_value == {"label": "neutral"}
    for item in (sure, rated):
        item.refresh_from_db()
        assert item.status == ItemStatus.IN_REVIEW
    assert not ReviewTask.objects.filter(item__in=[unsure, agreed]).exists()
    assert RoundChange.objects.get(item=rated).rating == rating
    assert result.closed.changes["review_model"] == 1 and result.closed.changes["review_rating"] == 1
    # A lower threshold in the next round does not send the same output's item twice.
    Item.objects.filter(pk=sure.pk).update(status=ItemStatus.APPROVED)
    ReviewTask.objects.filter(item=sure).update(status=ReviewStatus.DONE)
    again = round_plan(project=project, options=options(project, disagreement_confidence=0.5))
    assert [p.item.pk for p in again.label_errors] == [unsure.pk]


# --- The annotation queue --------------------------------------------------------------------------


@pytest.fixture
def queue_project(owner):
    project = project_create(owner=owner, name="Queue", labels=["a", "b", "c"])
    add_items(project, [f"item {i}" for i in range(23)])
    return project


def _queue(project: Project) -> list[int]:
    open_items = Item.objects.filter(project=project, is_open=True).order_by("-priority", "pk")
    return list(open_items.values_list("pk", flat=True))


def test_the_queue_follows_entropy_with_every_fifth_slot_random(queue_project, owner):
    all_items = items(queue_project)
    run = run_row(queue_project, owner)
    scored = all_items[:20]
    for rank, item in enumerate(scored):
        p = 0.34 + rank * 0.03  # later items are more certain: lower entropy
        output_row(run, item, probabilities={"a": p, "b": (1 - p) / 2, "c": (1 - p) / 2})
    result = round_advance(
        project=queue_project, user=owner, options=options(queue_project, queue_order="entropy", random_share=0.2)
    )
    queue = _queue(queue_project)
    assert len(queue) == 23 and result.closed.changes["queued"] == 23
    random_slots = [i for i in range(23) if (i + 1) % 5 == 0]
    assert result.closed.changes["queued_random"] == len(random_slots) == 4
    others = [pk for i, pk in enumerate(queue) if i not in random_slots]
    entropy_order = [item.pk for item in scored]  # most uncertain first = lowest rank
    scored_others = [pk for pk in others if pk in set(entropy_order)]
    assert scored_others == [pk for pk in entropy_order if pk in set(scored_others)]
    # Items without an output come after every scored item outside the random slots.
    unscored = {item.pk for item in all_items[20:]}
    tail = [pk for pk in others if pk in unscored]
    assert others[-len(tail) :] == tail


def test_the_queue_by_margin_and_items_without_outputs_last(queue_project, owner):
    all_items = items(queue_project)
    run = run_row(queue_project, owner)
    close, far, middle = all_items[0], all_items[1], all_items[2]
    # Same top probability, different runner-up: entropy would rank them otherwise than margin does.
    output_row(run, close, probabilities={"a": 0.5, "b": 0.45, "c": 0.05})
    output_row(run, far, probabilities={"a": 0.5, "b": 0.25, "c": 0.25})
    output_row(run, middle, probabilities={"a": 0.6, "b": 0.3, "c": 0.1})
    round_advance(
        project=queue_project, user=owner, options=options(queue_project, queue_order="margin", random_share=0)
    )
    queue = _queue(queue_project)
    assert queue[:3] == [close.pk, far.pk, middle.pk]
    assert set(queue[3:]) == {item.pk for item in all_items[3:]}
    assert margin({"a": 0.5, "b": 0.45, "c": 0.05}) == pytest.approx(0.95)


def test_random_slots_spread_the_share_evenly():
    slots = random_slots(20, 0.2)
    assert list(np.flatnonzero(slots)) == [4, 9, 14, 19]
    assert random_slots(10, 0.0).sum() == 0
    assert random_slots(10, 1.0).all()
    assert random_slots(10, 0.5).sum() == 5


def test_a_big_queue_is_written_in_batches_with_few_queries(owner, django_assert_max_num_queries):
    project = project_create(owner=owner, name="Big", labels=["a", "b"])
    n = 12_000
    add_items(project, [f"big item {i}" for i in range(n)])
    run = run_row(project, owner)
    from training.models import ModelOutput

    ids = list(Item.objects.filter(project=project).order_by("pk").values_list("pk", flat=True))
    rng = np.random.default_rng(0)
    outputs = []
    for pk, p in zip(ids, rng.uniform(0.05, 0.95, n).tolist(), strict=True):
        entropy = -p * np.log(p) - (1 - p) * np.log(1 - p)
        outputs.append(
            ModelOutput(
                run=run,
                item_id=pk,
                value={"label": "a"},
                probabilities={"a": p, "b": 1 - p},
                confidence=max(p, 1 - p),
                uncertainty=float(entropy),
            )
        )
    ModelOutput.objects.bulk_create(outputs, batch_size=2000)
    with django_assert_max_num_queries(60):
        result = round_advance(project=project, user=owner, options=options(project, random_share=0.1))
    assert result.closed.changes["queued"] == n
    top = Item.objects.filter(project=project).order_by("-priority", "pk").values_list("pk", flat=True)[:9]
    entropies = dict(ModelOutput.objects.filter(item_id__in=list(top)).values_list("item_id", "uncertainty"))
    assert all(entropies[pk] > 0.69 for pk in top)  # the head of the queue is near maximal binary entropy


# --- Pre-labels ------------------------------------------------------------------------------------


def test_prelabels_are_written_only_when_on_and_shown_only_then(project, owner, annotator, client):
    from tests.fixtures.people import acknowledge_guidelines

    run = run_row(project, owner)
    for item in items(project):
        output_row(run, item, "neutral")
    round_advance(project=project, user=owner, options=options(project, prelabels=0))
    assert not Item.objects.filter(project=project, prelabel__isnull=False).exists()

    result = round_advance(project=project, user=owner, options=options(project, prelabels=1))
    assert result.closed.changes["prelabels"] == 5
    prelabels = Item.objects.filter(project=project).values_list("prelabel", flat=True)
    assert all(v == {"label": "neutral"} for v in prelabels)
    project.refresh_from_db()
    assert project.show_prelabels

    acknowledge_guidelines(project, annotator)
    client.force_login(annotator)
    page = client.get(reverse("annotate", args=[project.pk])).content.decode()
    assert 'id="prelabel"' in page and "neutral" in page
    api = client.post(reverse("api-claim-next", args=[project.pk]))
    assert api.json()["prelabel"] == {"label": "neutral"}

    Project.objects.filter(pk=project.pk).update(show_prelabels=False)
    page = client.get(reverse("annotate", args=[project.pk])).content.decode()
    assert 'id="prelabel"' not in page
    assert "prelabel" not in client.post(reverse("api-claim-next", args=[project.pk])).json()


# --- Well-rated responses ---------------------------------------------------------------------------


@pytest.fixture
def instruction_project(owner, reviewer):
    project = project_create(owner=owner, name="Chat", task_type=TaskType.INSTRUCTION, guidelines="Be kind.")
    membership_set(project=project, user=reviewer, role=Role.REVIEWER)
    add_items(project, ["what colour is the sky", "what colour is grass", "what colour is snow"])
    return project


def test_well_rated_responses_become_training_examples(instruction_project, owner, reviewer):
    project = instruction_project
    second = make_user("rater2")
    membership_set(project=project, user=second, role=Role.REVIEWER)
    sky, grass, snow = items(project)
    run = run_row(project, owner, task="causal_lm")
    criteria = project.rating_criteria
    good = {c: 5 for c in criteria}
    for rater in (reviewer, second):
        rating_row(
            output_row(run, sky, response="the sky is blue"), rater, scores=good
        ) if rater == reviewer else rating_row(sky.model_outputs.get(run=run), rater, scores={**good, criteria[0]: 4})
    rating_row(output_row(run, grass, response="grass is red"), reviewer, scores=good)
    rating_row(grass.model_outputs.get(run=run), second, scores={**good, criteria[1]: 3})  # one rater disagrees
    rating_row(output_row(run, snow, response="snow is cold"), reviewer, scores={criteria[0]: 5})  # criteria missing

    plan = round_plan(project=project, options=options(project, min_rating=4))
    assert [p.item.pk for p in plan.examples] == [sky.pk]
    result = round_advance(project=project, user=owner, options=options(project, min_rating=4))

    decision = Decision.objects.get(item=sky)
    assert decision.source == DecisionSource.MODEL_RATED and decision.value == {"response": "the sky is blue"}
    assert "rater2" in decision.reason and f"Run {run.pk}" in decision.reason
    assert not Decision.objects.filter(item__in=[grass, snow]).exists()
    assert RoundChange.objects.get(item=sky).kind == RoundChange.Kind.EXAMPLE
    assert result.closed.changes["example"] == 1
    snapshot = snapshots.snapshot_create(project=project, user=owner, name="with examples", seed=0)
    assert SnapshotItem.objects.get(snapshot=snapshot, item=sky).value == {"response": "the sky is blue"}


# --- Advance: idempotent, figures, and the plan changes nothing -------------------------------------


def test_the_plan_changes_nothing(project, owner, reviewer, client):
    labelled, unlabelled, queued, *_ = items(project)
    approve(labelled, {"label": "positive"})
    run = run_row(project, owner)
    output_row(run, labelled, probabilities={"negative": 0.97, "positive": 0.03})
    output_row(run, queued, probabilities={"negative": 0.5, "positive": 0.5})
    output = output_row(run, unlabelled, "neutral")
    rating_row(output, reviewer, verdict=Verdict.WRONG, correction={"label": "positive"})
    round_open(project=project)
    before = state(project)
    plan = round_plan(project=project, options=options(project, prelabels=1, queue_order="margin"))
    summary = plan.summary()
    assert summary["corrections"]["count"] == 1 and summary["label_errors"]["count"] == 1
    assert summary["prelabels"]["count"] == 1 and summary["queue"]["count"] == 3
    client.force_login(owner)
    assert client.get(reverse("round-plan", args=[project.pk]), {"prelabels": "1"}).status_code == 200
    assert client.get(reverse("api-round-plan", args=[project.pk]), {"queue_order": "random"}).status_code == 200
    assert state(project) == before


def test_advance_is_idempotent(project, owner, reviewer):
    item = items(project)[0]
    run = run_row(project, owner)
    rating_row(output_row(run, item, "positive"), reviewer, verdict=Verdict.WRONG, correction={"label": "negative"})
    first = round_advance(project=project, user=owner, options=options(project), round_number=1)
    after_first = state(project)
    second = round_advance(project=project, user=owner, options=options(project), round_number=1)
    assert first.applied and not second.applied and second.closed.pk == first.closed.pk
    assert state(project) == after_first
    assert Round.objects.filter(project=project).count() == 2
    # A new round applies what is new only: the same rating never becomes a decision twice.
    third = round_advance(project=project, user=owner, options=options(project), round_number=2)
    assert third.applied and third.closed.changes["correction"] == 0
    assert Decision.objects.filter(item=item).count() == 1


def test_a_double_click_on_the_page_starts_one_round(project, owner, client):
    client.force_login(owner)
    url = reverse("round-advance", args=[project.pk])
    round_open(project=project)
    for _ in range(2):
        response = client.post(url, {"round": "1", "queue_order": "random", "prelabels": "0", "confirm": "1"})
        assert response.status_code == 302
    closed = [(r.number, r.closed_at is not None) for r in Round.objects.filter(project=project)]
    assert closed == [(1, True), (2, False)]


def test_bad_options_name_the_field_and_change_nothing(project, owner, client):
    round_open(project=project)
    before = state(project)
    for data, field in (
        ({"queue_order": "loudest"}, "queue_order"),
        ({"random_share": "1.5"}, "random_share"),
        ({"disagreement_confidence": "0.2"}, "disagreement_confidence"),
        ({"min_rating": "7"}, "min_rating"),
        ({"run": "999999"}, "run"),
    ):
        with pytest.raises(ServiceError) as refused:
            round_advance(project=project, user=owner, options=options(project, **data))
        assert refused.value.field == field
    client.force_login(owner)
    response = client.post(reverse("round-advance", args=[project.pk]), {"round": "1", "random_share": "2"})
    assert response.status_code == 400 and "random_share" in response.content.decode()
    api = client.post(
        reverse("api-round-advance", args=[project.pk]), {"queue_order": "loudest"}, content_type="application/json"
    )
    assert api.status_code == 400 and api.json()["field"] == "queue_order"
    assert state(project) == before


def test_closing_a_round_records_its_figures(project, owner, reviewer, annotator):
    round_open(project=project)  # the runs' snapshot is made during round 1
    run = run_row(project, owner, metrics={"test": {"macro_f1": 0.81, "accuracy": 0.9}})
    weaker = run_row(project, owner, metrics={"test": {"macro_f1": 0.7}}, snapshot=run.snapshot)
    first, second, *_ = items(project)
    approve(first, {"label": "positive"})
    rating_row(output_row(run, first, "positive"), reviewer, verdict=Verdict.CORRECT)
    rating_row(output_row(run, second, "positive"), reviewer, verdict=Verdict.WRONG)
    guideline_publish(project=project, author=owner, body="# Sentiment v2")
    result = round_advance(project=project, user=owner, options=options(project, run=run.pk))
    figures = result.closed.figures
    assert figures["main_metric"] == 0.81 and figures["best_run"] == run.pk and figures["metric_name"] == "macro_f1"
    assert figures["rating"] == 0.5 and figures["ratings"] == {"rated": 2, "correct": 1}
    assert figures["items_labelled"] == 1
    assert set(result.closed.runs.values_list("pk", flat=True)) == {run.pk, weaker.pk}
    assert result.closed.snapshot == run.snapshot
    assert result.opened.guideline_version.version == 2
    assert result.closed.plan["run_id"] == run.pk


def test_a_round_holds_the_runs_since_the_previous_round_closed(project, owner):
    early = run_row(project, owner, metrics={"test": {"macro_f1": 0.9}})  # before round 1 was ever opened
    later = run_row(project, owner, metrics={"test": {"macro_f1": 0.6}}, snapshot=early.snapshot)
    first = round_advance(project=project, user=owner, options=options(project, run=later.pk)).closed
    assert set(first.runs.values_list("pk", flat=True)) == {early.pk, later.pk}
    assert first.figures["main_metric"] == 0.9 and first.figures["best_run"] == early.pk
    newest = run_row(project, owner, metrics={"test": {"macro_f1": 0.7}}, snapshot=early.snapshot)
    second = round_advance(project=project, user=owner, options=options(project, run=newest.pk)).closed
    assert list(second.runs.values_list("pk", flat=True)) == [newest.pk]


def test_a_round_that_made_things_worse_is_said_plainly(project, owner, client):
    now = timezone.now()
    figures = [
        {"main_metric": 0.75, "metric_name": "macro_f1", "agreement": 0.6, "noise_rate": 0.1, "rating": 0.7},
        {"main_metric": 0.81, "metric_name": "macro_f1", "agreement": 0.7, "noise_rate": 0.08, "rating": 0.8},
        {"main_metric": 0.77, "metric_name": "macro_f1", "agreement": 0.72, "noise_rate": 0.12, "rating": 0.8},
    ]
    for number, values in enumerate(figures, start=1):
        Round.objects.create(project=project, number=number, figures=values, closed_at=now, closed_by=owner)
    sentences = rounds_worse(list(Round.objects.filter(project=project)))
    assert sentences == ["Round 3 made macro-F1 worse: 0.81 → 0.77", "Round 3 made the noise rate worse: 0.08 → 0.12"]
    client.force_login(owner)
    page = client.get(reverse("round-list", args=[project.pk])).content.decode()
    assert "Round 3 made macro-F1 worse: 0.81 → 0.77" in page
    assert 'id="rounds-chart-data"' in page and "Round 4 is open" in page


def test_the_settings_page_saves_the_next_round_options(project, owner, client):
    client.force_login(owner)
    page = client.get(reverse("project-settings", args=[project.pk])).content.decode()
    assert 'id="next-round"' in page and 'name="disagreement_confidence"' in page
    assert 'name="rating_criteria"' not in page  # a classifier's outputs are rated right or wrong, not on criteria
    url = reverse("round-settings", args=[project.pk])
    data = {
        "queue_order": "margin",
        "random_share": "0.3",
        "disagreement_confidence": "0.8",
        "show_prelabels": "on",
        "show_model_confidence": "on",
        "rating_criteria": "correct, concise\nsafe",
    }
    before = project.rating_criteria
    assert client.post(url, data).status_code == 302
    project.refresh_from_db()
    assert project.show_model_confidence and project.rating_criteria == before  # ignored: not offered
    assert (project.queue_order, project.random_share, project.disagreement_confidence, project.show_prelabels) == (
        "margin",
        0.3,
        0.8,
        True,
    )
    assert plan_options_default(project=project).queue_order == "margin"
    refused = client.post(url, {**data, "disagreement_confidence": "0.3"})
    assert refused.status_code == 400 and "greater than or equal to 0.5" in refused.content.decode()
    project.refresh_from_db()
    assert project.disagreement_confidence == 0.8


def test_rating_criteria_are_offered_and_saved_for_responses(owner, client):
    chat = project_create(owner=owner, name="Chat", task_type=TaskType.INSTRUCTION)
    client.force_login(owner)
    page = client.get(reverse("project-settings", args=[chat.pk])).content.decode()
    assert 'name="rating_criteria"' in page
    url = reverse("round-settings", args=[chat.pk])
    data = {
        "queue_order": "margin",
        "random_share": "0.3",
        "disagreement_confidence": "0.8",
        "rating_criteria": "correct, concise\nsafe",
    }
    assert client.post(url, data).status_code == 302
    chat.refresh_from_db()
    assert chat.rating_criteria == ["correct", "concise", "safe"]
    for criteria, message in (("", "at least one criterion"), ("safe, safe", "Each criterion once")):
        refused = client.post(url, {**data, "rating_criteria": criteria})
        assert refused.status_code == 400 and message in refused.content.decode()
    chat.refresh_from_db()
    assert chat.rating_criteria == ["correct", "concise", "safe"]


# --- The test split is sacred ----------------------------------------------------------------------


def test_a_round_never_changes_a_test_label_and_the_plan_shows_only_a_count(project, owner, reviewer, client):
    disputed, corrected, flagged, train, _ = items(project)
    for item in (disputed, corrected, flagged, train):
        approve(item, {"label": "positive"})
    for item in (disputed, corrected, flagged):
        ItemSplit.objects.create(item=item, split=Split.TEST)
    ItemSplit.objects.create(item=train, split=Split.TRAIN)
    run = run_row(project, owner)
    confident = {"negative": 0.97, "positive": 0.02, "neutral": 0.01}
    output_row(run, disputed, probabilities=confident)
    output_row(run, train, probabilities=confident)  # the same disagreement on a train item still goes to review
    rating_row(output_row(run, corrected, "positive"), reviewer, verdict=Verdict.WRONG, correction={"label": "neutral"})
    # A noise flag made before the item got its split left a review task open on it.
    review_task_open(item=flagged, reasons=[ReviewReason.NOISE], suggested_value={"label": "negative"})
    Item.objects.filter(pk=flagged.pk).update(status=ItemStatus.IN_REVIEW)
    labels_before = {i.pk: Decision.objects.filter(item=i).latest("created_at").value for i in (disputed, corrected)}

    plan = round_plan(project=project, options=options(project, disagreement_confidence=0.9))
    summary = plan.summary()
    assert [p.item.pk for p in plan.label_errors] == [train.pk] and plan.corrections == []
    assert summary["test_split"]["count"] == 2
    assert summary["test_split"]["model"] == 1 and summary["test_split"]["corrections"] == 1
    assert "test split is sacred" in summary["test_split"]["message"]
    shown = str(summary["label_errors"]) + str(summary["corrections"])
    assert f"'item_id': {disputed.pk}," not in shown and f"'item_id': {corrected.pk}," not in shown
    client.force_login(owner)
    page = client.get(reverse("round-plan", args=[project.pk]), {"disagreement_confidence": "0.9"}, **HTMX)
    assert "2 test-split item(s)" in page.content.decode()

    result = round_advance(project=project, user=owner, options=options(project, disagreement_confidence=0.9))

    for item in (disputed, corrected):
        assert Decision.objects.filter(item=item).count() == 1
        assert Decision.objects.filter(item=item).latest("created_at").value == labels_before[item.pk]
        assert not ReviewTask.objects.filter(item=item).exists() and not RoundChange.objects.filter(item=item)
    assert ReviewTask.objects.get(item=train, status=ReviewStatus.OPEN).reasons == [ReviewReason.MODEL]
    assert result.closed.changes["test_held"] == 2 and result.closed.changes["review_model"] == 1
    assert result.closed.plan["test_split"]["count"] == 2
    # The noise flag's review cannot change the test label; confirming it closes the review.
    task = ReviewTask.objects.get(item=flagged, status=ReviewStatus.OPEN)
    with pytest.raises(ServiceError, match="test split"):
        review_decide(reviewer=reviewer, task=task, value={"label": "negative"})
    assert review_decide(reviewer=reviewer, task=task, value={"label": "positive"}).value == {"label": "positive"}


def test_the_writer_holds_a_test_item_that_got_its_split_after_the_plan(project, owner, reviewer):
    item, other, *_ = items(project)
    approve(item, {"label": "positive"})
    approve(other, {"label": "positive"})
    run = run_row(project, owner)
    rating_row(output_row(run, item, "positive"), reviewer, verdict=Verdict.WRONG, correction={"label": "neutral"})
    plan = round_plan(project=project, options=options(project), full=True)
    assert [p.item.pk for p in plan.corrections] == [item.pk]
    ItemSplit.objects.create(item=item, split=Split.TEST)  # a snapshot made between the plan and the advance

    outcomes = proposals_apply(project=project, proposals=[p.to_value() for p in plan.corrections])
    assert outcomes[0].action == "held" and "test split" in outcomes[0].note
    assert Decision.objects.filter(item=item).count() == 1
    # A value people decided (not model-driven) still applies to a test item.
    ItemSplit.objects.create(item=other, split=Split.TEST)
    human = ValueProposal(
        item_id=other.pk,
        value={"label": "negative"},
        reason="imported review",
        decide=True,
        source=DecisionSource.REVIEWER,
        reviewer_id=reviewer.pk,
    )
    assert proposals_apply(project=project, proposals=[human])[0].action == "decide"


def test_reviewers_still_settle_annotator_disagreements_on_test_items(project, reviewer):
    item = items(project)[0]
    approve(item, {"label": "positive"})
    ItemSplit.objects.create(item=item, split=Split.TEST)
    task = review_task_open(item=item, reasons=[ReviewReason.DISAGREEMENT, ReviewReason.NOISE])
    assert review_decide(reviewer=reviewer, task=task, value={"label": "neutral"}).value == {"label": "neutral"}
