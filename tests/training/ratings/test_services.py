"""Ratings of model outputs: the queue, validation that names the field and writes nothing, append-only
history, blind A/B order and preferences, the JSONL exports (the DPO file read back), and the prediction
batch a run gets when it succeeds. Outputs are rows made here: training is not the point of these tests."""

from __future__ import annotations

import io
import json

import pytest

from annotation.models import (
    Item,
    Project,
    TaskType,
)
from annotation.projects.services import guideline_current, guideline_publish
from core.errors import ServiceError
from tests.fixtures.ratings import RatingWorld, classification_world, fake_succeeded_run, generation_world
from training.models import (
    Comparison,
    ModelOutput,
    PredictionBatch,
    PredictionScope,
    Preference,
    Rating,
    RunStatus,
    TrainingRun,
)
from training.ratings.selectors import (
    KIND_TEST,
    KIND_UNLABELLED,
    comparison_next,
    comparison_progress,
    comparison_summary,
    first_is_a,
    preference_pairs,
    rating_history,
    rating_next,
    ratings_current,
    ratings_export_rows,
)
from training.ratings.services import (
    CORRECT_TAKES_NO_CORRECTION,
    NOT_GENERATION,
    NOTE_TOO_LONG,
    SAME_AS_MODEL,
    SAME_RUN,
    SCORES_NOT_FOR_CLASSIFICATION,
    SECONDS_MAX,
    UNKNOWN_LABEL,
    VERDICT_REQUIRED,
    WRONG_NEEDS_LABEL,
    comparison_create,
    preference_submit,
    rating_submit,
)
from training.runs import services

# --- Worlds built from rows ----------------------------------------------------------------------


@pytest.fixture
def cls(users_by_role) -> RatingWorld:
    return classification_world(users_by_role)


@pytest.fixture
def gen(users_by_role) -> RatingWorld:
    return generation_world(users_by_role)


def rate(world: RatingWorld, output: ModelOutput, rater=None, **fields) -> Rating:
    return rating_submit(rater=rater or world.users["reviewer"], output=output, project=world.project, **fields)


# --- Rating classification outputs ---------------------------------------------------------------


def test_the_queue_shows_test_items_first_then_unlabelled_and_skips_what_this_rater_rated(cls):
    reviewer, owner = cls.users["reviewer"], cls.users["owner"]
    task = rating_next(run=cls.run, rater=reviewer)
    assert task.output == cls.outputs[0] and task.kind == KIND_TEST and task.remaining == 4
    rate(cls, cls.outputs[0], verdict="correct")
    rate(cls, cls.outputs[1], verdict="wrong", correction={"label": "negative"})
    task = rating_next(run=cls.run, rater=reviewer)
    assert task.output == cls.outputs[2] and task.kind == KIND_UNLABELLED and task.remaining == 2
    # Another rater's queue is their own.
    assert rating_next(run=cls.run, rater=owner).remaining == 4
    for output in cls.outputs[2:]:
        rate(cls, output, verdict="correct")
    done = rating_next(run=cls.run, rater=reviewer)
    assert done.output is None and done.remaining == 0


def test_a_rating_keeps_who_when_the_guideline_version_and_time_spent(cls):
    reviewer = cls.users["reviewer"]
    correct = rate(cls, cls.outputs[0], verdict="correct", note=" sure ", seconds_spent=4.5)
    wrong = rate(cls, cls.outputs[1], verdict="wrong", correction={"label": "negative"}, seconds_spent=99999)
    current = guideline_current(project=cls.project)
    assert correct.rater == reviewer and correct.guideline_version == current and correct.created_at
    assert (correct.verdict, correct.correction, correct.note, correct.seconds_spent) == ("correct", None, "sure", 4.5)
    assert (wrong.verdict, wrong.correction) == ("wrong", {"label": "negative"})
    assert wrong.seconds_spent == SECONDS_MAX  # a page left open does not count as rating time
    assert (wrong.item_id, wrong.run_id, wrong.project_id) == (cls.outputs[1].item_id, cls.run.pk, cls.project.pk)

    guideline_publish(project=cls.project, author=cls.users["owner"], body="Pick the writer's feeling. Sarcasm too.")
    again = rate(cls, cls.outputs[0], verdict="correct")
    assert again.guideline_version.version == current.version + 1


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({}, "verdict", VERDICT_REQUIRED),
        ({"verdict": "maybe"}, "verdict", VERDICT_REQUIRED),
        ({"verdict": "wrong"}, "label", WRONG_NEEDS_LABEL),
        ({"verdict": "wrong", "correction": {"label": "angry"}}, "label", None),
        ({"verdict": "wrong", "correction": {"label": "positive"}}, "label", SAME_AS_MODEL),
        (
            {"verdict": "correct", "correction": {"label": "negative"}},
            "correction",
            CORRECT_TAKES_NO_CORRECTION,
        ),
        ({"verdict": "correct", "scores": {"correct": 5}}, "scores", SCORES_NOT_FOR_CLASSIFICATION),
        ({"verdict": "correct", "note": "x" * 2001}, "note", NOTE_TOO_LONG),
    ],
)
def test_invalid_classification_ratings_name_the_field_and_write_nothing(cls, fields, field, message):
    with pytest.raises(ServiceError) as caught:
        rate(cls, cls.outputs[0], **fields)
    assert caught.value.field == field
    if message:
        assert caught.value.message == message
    else:
        assert caught.value.message == UNKNOWN_LABEL.format(label="angry", labels="positive, negative, neutral")
    assert not Rating.objects.exists()


def test_multi_label_outputs_take_the_right_label_set(users_by_role):
    world = classification_world(users_by_role, task_type=TaskType.MULTI_LABEL)
    rating = rate(world, world.outputs[0], verdict="wrong", correction={"labels": ["neutral", "negative", "neutral"]})
    assert rating.correction == {"labels": ["negative", "neutral"]}  # the project's label order, once each
    for correction, field in (({"labels": ["positive"]}, "labels"), ({"labels": ["odd"]}, "labels"), (None, "labels")):
        with pytest.raises(ServiceError) as caught:
            rate(world, world.outputs[1], verdict="wrong", correction=correction)
        assert caught.value.field == field
    assert Rating.objects.count() == 1


def test_ratings_are_appended_and_the_latest_per_output_and_rater_counts(cls):
    reviewer, owner = cls.users["reviewer"], cls.users["owner"]
    first = rate(cls, cls.outputs[0], verdict="correct")
    second = rate(cls, cls.outputs[0], verdict="wrong", correction={"label": "neutral"})
    by_owner = rate(cls, cls.outputs[0], rater=owner, verdict="correct")
    assert Rating.objects.filter(output=cls.outputs[0]).count() == 3
    first.refresh_from_db()
    assert first.verdict == "correct"  # the earlier rating is still there, unchanged
    assert set(ratings_current(project=cls.project)) == {second, by_owner}
    assert [r.pk for r in rating_history(output=cls.outputs[0], rater=reviewer)] == [first.pk, second.pk]


# --- Rating generated responses ------------------------------------------------------------------


def test_a_generated_response_is_scored_per_criterion_with_an_optional_correction(gen):
    output = gen.outputs[0]
    scores = {"correct": 2, "helpful": "3", "follows the guidelines": 5}
    rating = rate(gen, output, scores=scores, correction={"response": "  sky blue  "})
    assert rating.scores == {"correct": 2, "helpful": 3, "follows the guidelines": 5}
    assert rating.correction == {"response": "sky blue"} and rating.verdict == ""
    unchanged = rate(gen, gen.outputs[1], scores=scores, correction={"response": gen.outputs[1].value["response"]})
    assert unchanged.correction is None  # the model's response left as it was corrects nothing

    Project.objects.filter(pk=gen.project.pk).update(rating_criteria=["fluent"])
    gen.project.refresh_from_db()
    assert rate(gen, output, scores={"fluent": 4}).scores == {"fluent": 4}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"scores": {"correct": 6, "helpful": 3, "follows the guidelines": 3}}, "scores.correct"),
        ({"scores": {"correct": 0, "helpful": 3, "follows the guidelines": 3}}, "scores.correct"),
        ({"scores": {"correct": 2.5, "helpful": 3, "follows the guidelines": 3}}, "scores.correct"),
        ({"scores": {"correct": True, "helpful": 3, "follows the guidelines": 3}}, "scores.correct"),
        ({"scores": {"correct": 3, "helpful": 3}}, "scores.follows the guidelines"),
        ({"scores": {"correct": 3, "helpful": 3, "follows the guidelines": 3, "funny": 5}}, "scores"),
        ({"scores": {"correct": 3, "helpful": 3, "follows the guidelines": 3}, "verdict": "correct"}, "verdict"),
        ({"scores": {"correct": 3, "helpful": 3, "follows the guidelines": 3},
          "correction": {"response": "x" * 20_001}}, "response"),
    ],
)
def test_invalid_scores_name_the_field_and_write_nothing(gen, fields, field):
    with pytest.raises(ServiceError) as caught:
        rate(gen, gen.outputs[0], **fields)
    assert caught.value.field == field
    assert not Rating.objects.exists()


# --- Blind A/B -----------------------------------------------------------------------------------


def test_comparisons_need_two_succeeded_runs_of_an_instruction_project(gen, cls, users_by_role):
    owner = users_by_role["owner"]
    comparison = comparison_create(project=gen.project, user=owner, run_a=gen.run, run_b=gen.other_run)
    again = comparison_create(project=gen.project, user=owner, run_a=gen.other_run, run_b=gen.run)
    assert again == comparison and Comparison.objects.count() == 1

    with pytest.raises(ServiceError) as caught:
        comparison_create(project=gen.project, user=owner, run_a=gen.run, run_b=gen.run)
    assert (caught.value.field, caught.value.message) == ("run_b", SAME_RUN)
    TrainingRun.objects.filter(pk=gen.other_run.pk).update(status=RunStatus.FAILED)
    gen.other_run.refresh_from_db()
    with pytest.raises(ServiceError, match="Only runs that succeeded"):
        comparison_create(project=gen.project, user=owner, run_a=gen.run, run_b=gen.other_run)
    with pytest.raises(ServiceError) as caught:
        comparison_create(project=gen.project, user=owner, run_a=gen.run, run_b=cls.run)
    assert caught.value.field == "run_b"
    second = fake_succeeded_run(cls.run.snapshot, owner)
    with pytest.raises(ServiceError) as caught:
        comparison_create(project=cls.project, user=owner, run_a=cls.run, run_b=second)
    assert caught.value.message == NOT_GENERATION and "instruction project" in NOT_GENERATION
    assert Comparison.objects.count() == 1


def test_a_choice_by_side_is_stored_against_the_run_that_was_shown_there(gen):
    reviewer = gen.users["reviewer"]
    comparison = comparison_create(project=gen.project, user=gen.users["owner"], run_a=gen.run,
                                           run_b=gen.other_run)
    by_run = {o.item_id: o for o in gen.outputs}, {o.item_id: o for o in gen.other_outputs}
    choices = ["1", "2", "tie"]
    for choice in choices:
        pair = comparison_next(comparison=comparison, rater=reviewer)
        a_first = first_is_a(comparison_id=comparison.pk, item_id=pair.item_id, rater_id=reviewer.pk)
        first, second = (by_run[0], by_run[1]) if a_first else (by_run[1], by_run[0])
        assert pair.responses == (first[pair.item_id].value["response"], second[pair.item_id].value["response"])
        preference = preference_submit(comparison=comparison, rater=reviewer, item_id=pair.item_id,
                                               choice=choice)
        assert preference.first == first[pair.item_id]
        if choice == "tie":
            assert preference.tie and preference.chosen is None and preference.rejected is None
        else:
            chosen, rejected = (first, second) if choice == "1" else (second, first)
            assert (preference.chosen, preference.rejected) == (chosen[pair.item_id], rejected[pair.item_id])
    assert comparison_next(comparison=comparison, rater=reviewer) is None
    assert comparison_progress(comparison=comparison, rater=reviewer) == {"total": 3, "judged": 3}

    summary = comparison_summary(comparison=comparison)
    assert summary.wins_a + summary.wins_b == 2 and summary.ties == 1 and summary.raters == 1

    for bad, field in (("3", "choice"), ("", "choice")):
        with pytest.raises(ServiceError) as caught:
            preference_submit(comparison=comparison, rater=reviewer, item_id=gen.outputs[0].item_id, choice=bad)
        assert caught.value.field == field
    reference = Item.objects.get(project=gen.project, text="Reference prompt")
    with pytest.raises(ServiceError) as caught:
        preference_submit(comparison=comparison, rater=reviewer, item_id=reference.pk, choice="1")
    assert caught.value.field == "item"
    assert Preference.objects.count() == 3


def test_the_order_is_fixed_per_rater_and_item_and_varies_between_them(gen):
    ids = [(item, rater) for item in range(1, 41) for rater in (1, 2)]
    order = {key: first_is_a(comparison_id=7, item_id=key[0], rater_id=key[1]) for key in ids}
    assert order == {key: first_is_a(comparison_id=7, item_id=key[0], rater_id=key[1]) for key in ids}
    assert set(order.values()) == {True, False}
    assert any(order[(item, 1)] != order[(item, 2)] for item in range(1, 41))


# --- Exports -------------------------------------------------------------------------------------


def test_the_ratings_export_has_one_line_per_current_rating(cls):
    rate(cls, cls.outputs[0], verdict="correct")
    rate(cls, cls.outputs[0], verdict="wrong", correction={"label": "negative"}, note="on second thought")
    rate(cls, cls.outputs[1], rater=cls.users["owner"], verdict="correct")
    rows = list(ratings_export_rows(project=cls.project))
    assert len(rows) == 2
    first = rows[0]
    assert first["item_id"] == cls.outputs[0].item_id and first["text"] == "I love it"
    assert first["run_id"] == cls.run.pk and first["output"] == {"label": "positive"}
    assert (first["verdict"], first["correction"]) == ("wrong", {"label": "negative"})
    assert first["note"] == "on second thought"
    assert first["rater"] == "reviewer" and first["guideline_version"] == 1 and first["created_at"]
    assert rows[1]["rater"] == "owner" and rows[1]["verdict"] == "correct" and rows[1]["correction"] is None
    json.dumps(rows)  # every value is plain JSON


def test_the_dpo_export_reads_back_as_prompt_chosen_rejected_strings(gen):
    reviewer, owner = gen.users["reviewer"], gen.users["owner"]
    comparison = comparison_create(project=gen.project, user=owner, run_a=gen.run, run_b=gen.other_run)
    items = [o.item_id for o in gen.outputs]
    preference_submit(comparison=comparison, rater=reviewer, item_id=items[0], choice="1")
    preference_submit(comparison=comparison, rater=reviewer, item_id=items[0], choice="2")  # changed mind
    preference_submit(comparison=comparison, rater=reviewer, item_id=items[1], choice="tie")
    preference_submit(comparison=comparison, rater=owner, item_id=items[2], choice="1")
    scores = {"correct": 1, "helpful": 1, "follows the guidelines": 3}
    rate(gen, gen.outputs[2], scores=scores, correction={"response": "It is purple."})
    rate(gen, gen.outputs[1], scores=scores)  # no correction: no pair

    buffer = io.StringIO("".join(json.dumps(pair) + "\n" for pair in preference_pairs(project=gen.project)))
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert len(lines) == 3  # the latest choice on item 0, the owner's on item 2, one correction; the tie is skipped
    for line in lines:
        assert set(line) == {"prompt", "chosen", "rejected"}
        assert all(isinstance(value, str) and value for value in line.values())
        assert line["chosen"] != line["rejected"]
    prompts = {o.item_id: o.item.text for o in gen.outputs}
    a_first = first_is_a(comparison_id=comparison.pk, item_id=items[0], rater_id=reviewer.pk)
    a_and_b = [gen.outputs[0].value["response"], gen.other_outputs[0].value["response"]]
    winner, loser = a_and_b[::-1] if a_first else a_and_b  # the final choice "2" picked the response shown second
    assert lines[0] == {"prompt": prompts[items[0]], "chosen": winner, "rejected": loser}
    assert lines[2] == {"prompt": prompts[items[2]], "chosen": "It is purple.", "rejected": "blue number 2"}


def test_a_classification_project_exports_no_pairs(cls):
    rate(cls, cls.outputs[1], verdict="wrong", correction={"label": "negative"})
    assert list(preference_pairs(project=cls.project)) == []


# --- Outputs to rate after a run --------------------------------------------------------------------


def test_a_run_that_succeeds_queues_predictions_for_rating_once(cls, settings, tmp_path, queues,
                                                               django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path
    run = TrainingRun.objects.create(
        project=cls.project, snapshot=cls.run.snapshot, snapshot_hash="0" * 64, task="classification",
        base_model="tiny", spec={}, created_by=cls.users["owner"], status=RunStatus.RUNNING,
    )
    artifact = tmp_path / "runs" / str(run.pk) / "artifact"
    artifact.mkdir(parents=True)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.run_finish(run=run, status=RunStatus.SUCCEEDED, metrics={}, progress={"step": 3},
                                   artifact_dir=artifact, message="done")
    batch = PredictionBatch.objects.get(run=run)
    assert batch.scope == PredictionScope.TEST_AND_UNLABELLED and batch.created_by == cls.users["owner"]
    assert queues[services.QUEUE].fetch_job(services.prediction_job_id(batch.pk)) is not None
    with django_capture_on_commit_callbacks(execute=True):
        assert services.prediction_batch_after_run(run_id=run.pk) is None
        assert not services.run_finish(run=run, status=RunStatus.SUCCEEDED, metrics={}, progress={},
                                       artifact_dir=artifact, message="again")
    assert PredictionBatch.objects.filter(run=run).count() == 1


def test_a_cancelled_run_or_one_without_a_model_gets_no_automatic_predictions(cls, settings, tmp_path,
                                                                             django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path

    def running() -> TrainingRun:
        return TrainingRun.objects.create(
            project=cls.project, snapshot=cls.run.snapshot, snapshot_hash="0" * 64, task="classification",
            base_model="tiny", spec={}, created_by=cls.users["owner"], status=RunStatus.RUNNING,
        )

    cancelled, no_model = running(), running()
    with django_capture_on_commit_callbacks(execute=True):
        services.run_finish(run=cancelled, status=RunStatus.CANCELLED, metrics={}, progress={}, artifact_dir=None,
                            message="stopped")
        services.run_finish(run=no_model, status=RunStatus.SUCCEEDED, metrics={}, progress={}, artifact_dir=None,
                            message="done")
    assert not PredictionBatch.objects.exists()
    assert no_model.events.filter(data__message__startswith="Predictions for rating not queued").exists()


@pytest.fixture
def queues():
    import django_rq

    queue = django_rq.get_queue(services.QUEUE)
    queue.empty()
    yield {services.QUEUE: queue}
    queue.empty()

