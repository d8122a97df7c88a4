"""Augmentation end to end through a real RQ SimpleWorker on the tiny models: only train rows are read and
made, every row names its source and method, the snapshot is untouched, the rows are the same for the same seed,
and a run trained with them keeps validation and test as they were and says it was augmented."""

from __future__ import annotations

import hashlib
import json

import django_rq
import pytest

from annotation.datasets.services import snapshot_rows_hash
from annotation.models import SnapshotItem, Split
from core.errors import ServiceError
from core.queues import JsonSimpleWorker
from tests.fixtures.runs import TINY_BERT_SPEC, qa_snapshot, run_worker, sentiment_snapshot
from training.augment import selectors as augment_selectors
from training.augment import services
from training.ml import augment as ml
from training.models import Augmentation, AugmentationStatus, RunStatus, TrainingRun
from training.runs import selectors as run_selectors
from training.runs import services as run_services
from training.spec import TrainingSpec

pytestmark = pytest.mark.usefixtures("tiny_models", "queues", "augment_models")


@pytest.fixture
def augment_models(settings, tiny_bert, tiny_llama):
    """The tiny encoder and causal LM under the names augmentation loads (MiniLM's and SmolLM2's)."""
    settings.LABELLOOP_MODEL_REGISTRY = {
        **settings.LABELLOOP_MODEL_REGISTRY, "minilm": str(tiny_bert), "smollm2-135m": str(tiny_llama)
    }
    queue = django_rq.get_queue(services.SHORT_QUEUE)
    queue.empty()
    yield
    queue.empty()


def work() -> None:
    """Drain the queues augmentations go to, in this process."""
    django_rq.get_worker(services.TRAINING_QUEUE, services.SHORT_QUEUE, worker_class=JsonSimpleWorker).work(burst=True)


def augment(snapshot, user, capture, **options) -> Augmentation:
    with capture(execute=True):
        augmentation = services.augmentation_start(snapshot=snapshot, user=user, **options)
    work()
    augmentation.refresh_from_db()
    return augmentation


def split_ids(snapshot, split: str) -> set[int]:
    return set(SnapshotItem.objects.filter(snapshot=snapshot, split=split).values_list("item_id", flat=True))


def test_only_train_rows_are_augmented_with_provenance_and_the_snapshot_is_untouched(
    owner, django_capture_on_commit_callbacks
):
    snapshot = sentiment_snapshot(owner, count=60)
    before = snapshot_rows_hash(snapshot=snapshot)
    augmentation = augment(
        snapshot, owner, django_capture_on_commit_callbacks, methods=["synonyms", "random_edits"], per_row=2, seed=3
    )
    assert augmentation.status == AugmentationStatus.SUCCEEDED, augmentation.message
    assert augmentation.snapshot_hash == snapshot.content_hash
    assert augmentation.options == {"methods": ["random_edits", "synonyms"], "per_row": 2, "seed": 3,
                                    "max_paraphrases": services.MAX_PARAPHRASES_DEFAULT}
    rows = list(services.augmentation_rows(augmentation=augmentation))
    assert len(rows) == augmentation.row_count > 0
    assert augmentation.report["made"]["random_edits"] > 0 and augmentation.report["made"]["synonyms"] > 0
    assert augmentation.report["source_rows"] == len(split_ids(snapshot, Split.TRAIN))

    train, held_out = split_ids(snapshot, Split.TRAIN), split_ids(snapshot, Split.VALIDATION) | split_ids(
        snapshot, Split.TEST
    )
    finals = dict(SnapshotItem.objects.filter(snapshot=snapshot).values_list("item_id", "value"))
    for row in rows:
        assert row["split"] == "train"
        assert row["augmented_from"] in train and row["augmented_from"] not in held_out
        assert row["provenance"]["source_id"] == row["augmented_from"]
        assert row["provenance"]["method"] == row["method"] in ("random_edits", "synonyms")
        assert row["label"] == finals[row["augmented_from"]]["label"]  # the source row's label, unchanged

    path = services.augmentation_file(augmentation)
    assert augmentation.content_hash == hashlib.sha256(path.read_bytes()).hexdigest() == path.stem
    snapshot.refresh_from_db()
    assert snapshot_rows_hash(snapshot=snapshot) == before == snapshot.content_hash
    assert SnapshotItem.objects.filter(snapshot=snapshot).count() == snapshot.item_count

    again = augment(
        snapshot, owner, django_capture_on_commit_callbacks, methods=["random_edits", "synonyms"], per_row=2, seed=3
    )
    assert again.content_hash == augmentation.content_hash  # same snapshot, options and seed: the same rows
    other = augment(snapshot, owner, django_capture_on_commit_callbacks, methods=["random_edits"], seed=4)
    assert other.content_hash != augmentation.content_hash


def test_a_run_trains_on_the_augmented_rows_and_keeps_validation_and_test_as_they_were(
    owner, settings, django_capture_on_commit_callbacks
):
    snapshot = sentiment_snapshot(owner, count=60)
    augmentation = augment(snapshot, owner, django_capture_on_commit_callbacks, methods=["random_edits"])
    spec = TrainingSpec.from_dict({"task": "classification", **TINY_BERT_SPEC})
    plain = run_selectors.snapshot_training_data(snapshot=snapshot, spec=spec)
    augmented = run_selectors.snapshot_training_data(snapshot=snapshot, spec=spec, augmentation=augmentation)
    assert augmented.validation == plain.validation and augmented.test == plain.test
    assert augmented.train[: len(plain.train)] == plain.train
    assert len(augmented.train) == len(plain.train) + augmentation.row_count
    assert augmented.counts()["train_augmented"] == augmentation.row_count

    with django_capture_on_commit_callbacks(execute=True):
        run = run_services.run_start(
            snapshot=snapshot, user=owner, spec_data=TINY_BERT_SPEC, name="aug", augmentation_id=augmentation.pk
        )
    assert run_worker()
    run = TrainingRun.objects.get(pk=run.pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.augmentation_id == augmentation.pk
    assert run.metrics["rows"]["train"] == len(augmented.train)
    assert run.metrics["test"]["n"] == len(plain.test)
    artifact = run_selectors.run_artifact_path(run)
    info = json.loads((artifact / "run.json").read_text())
    assert info["augmentation"]["content_hash"] == augmentation.content_hash
    assert info["snapshot_hash"] == snapshot.content_hash
    assert "Augmented: " in (artifact / "README.md").read_text()


def test_a_tampered_augmentation_file_with_a_test_row_stops_the_run(owner, django_capture_on_commit_callbacks):
    snapshot = sentiment_snapshot(owner, count=60)
    augmentation = augment(snapshot, owner, django_capture_on_commit_callbacks, methods=["random_edits"])
    path = services.augmentation_file(augmentation)
    rows = [json.loads(line) for line in path.read_bytes().splitlines()]
    rows[0]["split"] = "test"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    spec = TrainingSpec.from_dict({"task": "classification", **TINY_BERT_SPEC})
    with pytest.raises(run_selectors.AugmentationDataError, match="may only join the train split"):
        run_selectors.snapshot_training_data(snapshot=snapshot, spec=spec, augmentation=augmentation)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"methods": []}, services.NO_METHOD),
        ({"methods": ["wordnet"]}, "Unknown augmentation method 'wordnet'"),
        ({"methods": ["back_translation"]}, "none is installed"),
        ({"methods": ["random_edits"], "per_row": 0}, services.BAD_PER_ROW),
        ({"methods": ["random_edits"], "per_row": "two"}, services.BAD_PER_ROW),
        ({"methods": ["random_edits"], "seed": -1}, services.BAD_SEED),
        ({"methods": ["paraphrase"], "max_paraphrases": 0}, services.BAD_MAX_PARAPHRASES),
    ],
)
def test_bad_options_are_refused_with_a_clear_message_and_nothing_is_queued(owner, options, message):
    snapshot = sentiment_snapshot(owner, count=20)
    with pytest.raises(ServiceError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        services.augmentation_start(snapshot=snapshot, user=owner, **options)
    assert not Augmentation.objects.exists()
    assert django_rq.get_queue(services.SHORT_QUEUE).count == 0


def test_one_augmentation_at_a_time_per_snapshot(owner):
    snapshot = sentiment_snapshot(owner, count=20)
    services.augmentation_start(snapshot=snapshot, user=owner, methods=["random_edits"])
    with pytest.raises(ServiceError, match="already queued or running"):
        services.augmentation_start(snapshot=snapshot, user=owner, methods=["synonyms"])
    assert Augmentation.objects.count() == 1


def test_a_run_refuses_an_augmentation_of_another_snapshot_or_one_not_finished(
    owner, django_capture_on_commit_callbacks
):
    first = sentiment_snapshot(owner, count=20)
    second = sentiment_snapshot(owner, count=20)
    done = augment(first, owner, django_capture_on_commit_callbacks, methods=["random_edits"])
    queued = services.augmentation_start(snapshot=second, user=owner, methods=["random_edits"])
    for snapshot, augmentation, message in ((second, done, "another snapshot"), (second, queued, "not succeeded")):
        with pytest.raises(run_services.RunInputError) as caught:
            run_services.run_start(
                snapshot=snapshot, user=owner, spec_data=TINY_BERT_SPEC, augmentation_id=augmentation.pk
            )
        assert message in caught.value.errors["augmentation"]
    assert not TrainingRun.objects.exists()


def test_instruction_data_is_paraphrased_on_the_prompt_only(owner, django_capture_on_commit_callbacks):
    snapshot = qa_snapshot(owner, count=20)
    choices = {c.method: c for c in services.method_choices_for(snapshot.project)}
    assert choices["paraphrase"].available
    assert not choices["random_edits"].available and choices["random_edits"].reason == services.INSTRUCTION_EDITS
    assert not choices["back_translation"].available
    assert choices["back_translation"].reason == ml.NO_TRANSLATION_MODEL
    with pytest.raises(ServiceError, match="Only paraphrase of the prompt"):
        services.augmentation_start(snapshot=snapshot, user=owner, methods=["synonyms"])

    augmentation = augment(
        snapshot, owner, django_capture_on_commit_callbacks, methods=["paraphrase"], max_paraphrases=3
    )
    assert augmentation.status == AugmentationStatus.SUCCEEDED, augmentation.message
    assert augmentation.report["paraphrase_sources"] == 3
    made, skipped = augmentation.report["made"]["paraphrase"], augmentation.report["skipped"]["paraphrase"]
    assert made + skipped == 3  # the tiny random LM mostly babbles: what is kept is cleaned, the rest counted
    responses = dict(SnapshotItem.objects.filter(snapshot=snapshot).values_list("item_id", "value__response"))
    for row in services.augmentation_rows(augmentation=augmentation):
        assert set(row) >= {"prompt", "response", "split", "augmented_from", "method", "provenance"}
        assert row["split"] == "train" and row["response"] == responses[row["augmented_from"]]


def test_the_page_sample_shows_each_row_beside_its_source(owner, django_capture_on_commit_callbacks):
    snapshot = sentiment_snapshot(owner, count=30)
    augmentation = augment(snapshot, owner, django_capture_on_commit_callbacks, methods=["random_edits"])
    sample = augment_selectors.augmentation_sample(augmentation=augmentation, limit=5)
    texts = dict(SnapshotItem.objects.filter(snapshot=snapshot).values_list("item_id", "item__text"))
    assert sample and all(row["source"] == texts[row["source_id"]] != row["text"] for row in sample)


def test_multi_label_projects_are_offered_nothing_and_told_why():
    choices = services.method_choices(has_labels=True, training_task=None)
    assert choices and all(not c.available and c.reason == services.MULTI_LABEL for c in choices)


def test_span_projects_are_offered_nothing_and_told_why():
    """Edited text would no longer match the spans' offsets."""
    choices = services.method_choices(has_labels=True, training_task="spans")
    assert choices and all(not c.available and c.reason == services.SPAN_EDITS for c in choices)
