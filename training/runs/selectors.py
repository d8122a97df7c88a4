"""Reads for training: runs, their charts and checkpoints, and a snapshot's rows shaped for the recipe.

Nothing here imports torch: the web process lists runs and renders charts without loading any ML library.
"""

from __future__ import annotations

import datetime as dt
import operator
import random
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, F, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from annotation.models import (
    Annotation,
    AnnotationStatus,
    GuidelineVersion,
    Item,
    ItemStatus,
    Label,
    Project,
    Snapshot,
    SnapshotItem,
    Split,
)
from annotation.permissions import ANY_ROLE, access_project
from annotation.tasktypes import value_display, value_key
from core import durations
from core.queues import QueuePlace, queue_place
from training.ml.registry import ModelRegistry
from training.models import (
    FINAL_STATUSES,
    Augmentation,
    ModelOutput,
    PredictionBatch,
    PredictionScope,
    PredictionStatus,
    RunEvent,
    RunStatus,
    TrainingRun,
)
from training.spec import DEFAULT_BASE_MODELS, TASK_CLASSIFICATION, TASK_SPANS, TrainingSpec

READ_CHUNK = 5000


# Training runs and prediction batches: the long, GPU/CPU-heavy jobs (docs/OPERATIONS.md, which queue takes what).
TRAINING_QUEUE = "training"


# The recipe names its checkpoint folders step-000120 (training/ml/checkpoints.py); read here without torch.
CHECKPOINT_DIR_PATTERN = re.compile(r"^step-(\d+)$")


CHECKPOINT_STATE_FILE = "state.json"


RUNS_DIR = "runs"


RUN_NOT_FOUND = "No such run."


BATCH_NOT_FOUND = "No such prediction batch."


AUGMENTATION_OTHER_SNAPSHOT = "Augmentation {id} was not made from snapshot {snapshot}: its rows cannot join this run."


class AugmentationDataError(ValueError):
    """Augmented rows that may not join a run's train split (another snapshot's, or not train rows)."""


AUGMENTATION_NOT_TRAIN = (
    "An augmented row made from item {source} is not a train row of the snapshot: augmented rows may only join "
    "the train split, so the run stops here."
)


# Chart series longer than this are thinned (every k-th point, the last one always kept).
MAX_CHART_POINTS = 500


EVAL_FIGURES = ("loss", "accuracy", "macro_f1", "perplexity", "ece")


BALANCE_RESAMPLING = ("downsample", "undersample", "oversample")


ZIP_READ_BLOCK = 1 << 20


def model_registry() -> ModelRegistry:
    """The base models this installation offers: the shipped ones plus settings.LABELLOOP_MODEL_REGISTRY."""
    return ModelRegistry(extra=settings.LABELLOOP_MODEL_REGISTRY, cache_dir=Path(settings.LABELLOOP_MODEL_CACHE))


def base_model_names(task: str) -> list[str]:
    """Registered names, the task's default first."""
    names = model_registry().names_for(task)
    default = DEFAULT_BASE_MODELS[task]
    return [default, *(n for n in names if n != default)] if default in names else names


def project_task(project: Project) -> str | None:
    """The recipe's task for a project's task type; None where the recipe has none (multi-label)."""
    return project.task_kind.training_task


def run_list(
    *, project: Project, status: str | None = None, snapshot_id: int | None = None
) -> QuerySet[TrainingRun]:
    """The project's runs, newest first; optionally only those in one status or trained on one snapshot."""
    runs = TrainingRun.objects.filter(project=project).select_related("snapshot", "created_by", "resumed_from")
    if status is not None:
        runs = runs.filter(status=status)
    if snapshot_id is not None:
        runs = runs.filter(snapshot_id=snapshot_id)
    return runs


def run_get(*, project: Project, run_id: int) -> TrainingRun:
    run = run_list(project=project).filter(pk=run_id).first()
    if run is None:
        raise Http404(RUN_NOT_FOUND)
    run.project = project
    return run


def run_get_for_user(
    *, user: User | AnonymousUser, project_id: int, run_id: int, roles: frozenset[str] = ANY_ROLE
) -> tuple[TrainingRun, str]:
    """A run of a project the user may reach with one of `roles`: 404 outside the project or for another
    project's run, 403 for the wrong role (the /api/projects/<id>/runs/<run>/ routes)."""
    project, role = access_project(user=user, project_id=project_id, roles=roles)
    return run_get(project=project, run_id=run_id), role


def run_dir(run: TrainingRun) -> Path:
    return Path(settings.MEDIA_ROOT) / RUNS_DIR / str(run.pk)


def media_path(relative: str) -> Path | None:
    return Path(settings.MEDIA_ROOT) / relative if relative else None


def checkpoint_steps(directory: Path | None) -> list[int]:
    """Steps of the complete checkpoints in a folder (those with their state file), oldest first."""
    if directory is None or not directory.is_dir():
        return []
    steps = []
    for child in directory.iterdir():
        match = CHECKPOINT_DIR_PATTERN.match(child.name)
        if match and (child / CHECKPOINT_STATE_FILE).is_file():
            steps.append(int(match.group(1)))
    return sorted(steps)


@dataclass(frozen=True)
class ResumePoint:
    run: TrainingRun
    directory: Path
    step: int


def run_resume_point(run: TrainingRun) -> ResumePoint | None:
    """The newest checkpoint this run can continue from: its own, else the nearest ancestor's it resumed from."""
    current: TrainingRun | None = run
    while current is not None:
        directory = media_path(current.checkpoint_dir)
        steps = checkpoint_steps(directory)
        if steps and directory is not None:
            return ResumePoint(run=current, directory=directory, step=steps[-1])
        current = current.resumed_from
    return None


def run_can_resume(run: TrainingRun) -> bool:
    return run.status in (RunStatus.FAILED, RunStatus.CANCELLED) and run_resume_point(run) is not None


def run_artifact_path(run: TrainingRun) -> Path | None:
    path = media_path(run.artifact_dir)
    return path if path is not None and path.is_dir() else None


def run_chart_data(run: TrainingRun) -> dict[str, Any]:
    """The live charts' series from the run's events: training loss and learning rate, validation figures."""
    train = list(run.events.filter(kind=RunEvent.Kind.TRAIN).values_list("step", "data"))
    if len(train) > MAX_CHART_POINTS:
        stride = -(-len(train) // MAX_CHART_POINTS)
        train = train[::stride] + ([train[-1]] if (len(train) - 1) % stride else [])
    evals = list(run.events.filter(kind=RunEvent.Kind.EVAL).values_list("step", "data"))
    figures = [name for name in EVAL_FIGURES if any(name in data for _, data in evals)]
    charts: dict[str, Any] = {
        "train": {
            "steps": [step for step, _ in train],
            "loss": [data.get("train_loss") for _, data in train],
            "lr": [data.get("lr") for _, data in train],
        },
        "eval": {
            "steps": [step for step, _ in evals],
            "series": {name: [data.get(name) for _, data in evals] for name in figures},
        },
    }
    if run.task == TASK_SPANS:
        charts["per_label"] = span_label_figures(run)
    return charts


def span_label_figures(run: TrainingRun) -> dict[str, Any] | None:
    """A span run's entity F1 per label on the test split (seqeval's), with each label's entity count: the third
    chart of its page, which has no validation curve to draw. None until the run is evaluated."""
    per_label = ((run.metrics or {}).get("test") or {}).get("per_label") or {}
    if not per_label:
        return None
    labels = sorted(per_label)
    return {
        "labels": labels,
        "f1": [per_label[name].get("f1-score") for name in labels],
        "support": [per_label[name].get("support") for name in labels],
    }


def run_messages(run: TrainingRun) -> list[RunEvent]:
    return list(run.events.filter(kind=RunEvent.Kind.LOG))


def runs_for_compare(*, snapshot: Snapshot) -> list[TrainingRun]:
    """The finished runs of one snapshot with test metrics, oldest first, for a side-by-side table."""
    runs = TrainingRun.objects.filter(snapshot=snapshot, status__in=FINAL_STATUSES).exclude(metrics={})
    return list(runs.order_by("created_at", "id"))


@dataclass
class TrainingData:
    """Recipe rows per split, the class labels, and how the train rows were balanced (if at all)."""

    train: list[dict[str, Any]] = field(default_factory=list)
    validation: list[dict[str, Any]] = field(default_factory=list)
    test: list[dict[str, Any]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    balance: dict[str, Any] | None = None
    # What the guidelines say about each label, for the zero-shot baseline.
    label_descriptions: dict[str, str] = field(default_factory=dict)
    # The items' metadata, parallel to the validation and test rows, for the per-slice figures. Read from the
    # items when the run starts, never from the snapshot's (content-hashed, immutable) files.
    metadata: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    augmented: int = 0  # train rows that came from an augmentation (appended after the snapshot's own)

    def counts(self) -> dict[str, int]:
        counts = {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}
        if self.augmented:
            counts["train_augmented"] = self.augmented
        return counts


def snapshot_labels(snapshot: Snapshot) -> list[str]:
    """The snapshot's class labels in the project's label order (labels no longer in the project last)."""
    present = set(snapshot.manifest.get("labels", {}))
    ordered = [name for name in Label.objects.filter(project_id=snapshot.project_id).values_list("name", flat=True)]
    return [name for name in ordered if name in present] + sorted(present - set(ordered))


def snapshot_class_weights(snapshot: Snapshot) -> dict[str, float] | None:
    """Class weights the snapshot's balance report computed, when it was made with "class_weights"."""
    balance = snapshot.manifest.get("class_balance") or {}
    return balance.get("class_weights") if balance.get("mode") == "class_weights" else None


def snapshot_guidelines(snapshot: Snapshot) -> str:
    """The guidelines the snapshot's labels were given under: the newest version its rows record, else the
    newest one published before the snapshot was made; empty when the project has none."""
    recorded = [int(v) for v in snapshot.manifest.get("guideline_versions", {}) if str(v).isdigit()]
    versions = GuidelineVersion.objects.filter(project_id=snapshot.project_id)
    if recorded:
        versions = versions.filter(version=max(recorded))
    else:
        versions = versions.filter(created_at__lte=snapshot.created_at)
    guideline = versions.order_by("-version").first()
    return guideline.body if guideline is not None else ""


def snapshot_split_counts(snapshot: Snapshot) -> dict[str, int]:
    return {split: int(snapshot.manifest.get("splits", {}).get(split, 0)) for split in Split.values}


def snapshot_train_label_counts(snapshot: Snapshot) -> dict[str, int]:
    """{label: train-split items} of a classification snapshot (what the classifier will learn from)."""
    rows = (
        SnapshotItem.objects.filter(snapshot=snapshot, split=Split.TRAIN)
        .order_by()
        .values_list("value__label")
        .annotate(n=Count("id"))
        .values_list("value__label", "n")
    )
    return {str(label): n for label, n in rows if label is not None}


def item_agreement(*, snapshot: Snapshot) -> dict[int, float]:
    """Per item: the share of its annotators whose value matches the snapshot's final value (0..1).

    Items without annotations (imported labels) are left out: the recipe treats them as agreed.
    """
    finals = {
        item_id: value_key(value)
        for item_id, value in SnapshotItem.objects.filter(snapshot=snapshot).values_list("item_id", "value").iterator(
            chunk_size=READ_CHUNK
        )
    }
    votes: dict[int, list[bool]] = defaultdict(list)
    annotations = Annotation.objects.filter(
        item__snapshot_rows__snapshot=snapshot, status=AnnotationStatus.SUBMITTED
    ).values_list("item_id", "value")
    for item_id, value in annotations.iterator(chunk_size=READ_CHUNK):
        votes[item_id].append(value_key(value) == finals.get(item_id))
    return {item_id: round(sum(agrees) / len(agrees), 4) for item_id, agrees in votes.items()}


def _recipe_row(task: str, text: str, value: dict[str, Any]) -> dict[str, Any]:
    if task == TASK_CLASSIFICATION:
        return {"text": text, "label": value["label"]}
    return {"prompt": text, "response": value["response"]}


def snapshot_training_data(
    *, snapshot: Snapshot, spec: TrainingSpec, augmentation: Augmentation | None = None
) -> TrainingData:
    """The snapshot's rows as the recipe reads them, in item id order, split by split.

    With `curriculum="agreement"` each row carries its item's annotator agreement. Classification data carries
    each label's description from the snapshot's guidelines (for the zero-shot baseline). A snapshot made with a
    downsample/oversample balance report gets its train rows resampled the same way (same mode and seed, rows
    in the same order as in its file), so the run trains on exactly what the report described.
    """
    agreement = item_agreement(snapshot=snapshot) if spec.curriculum == "agreement" else {}
    data = TrainingData(labels=snapshot_labels(snapshot) if spec.task == TASK_CLASSIFICATION else [])
    if data.labels:
        from training.ml.baselines import label_descriptions

        data.label_descriptions = label_descriptions(snapshot_guidelines(snapshot), data.labels)
    rows = (
        SnapshotItem.objects.filter(snapshot=snapshot)
        .order_by("item_id")
        .values_list("item_id", "item__text", "value", "split", "item__metadata")
    )
    for item_id, text, value, split, metadata in rows.iterator(chunk_size=READ_CHUNK):
        row = _recipe_row(spec.task, text, value)
        if item_id in agreement:
            row["agreement"] = agreement[item_id]
        getattr(data, split).append(row)
        if split != Split.TRAIN:
            data.metadata.setdefault(split, []).append(metadata if isinstance(metadata, dict) else {})
    balance = snapshot.manifest.get("class_balance") or {}
    if spec.task == TASK_CLASSIFICATION and balance.get("mode") in BALANCE_RESAMPLING:
        from annotation.datasets import splits

        keep = splits.class_balance([row["label"] for row in data.train], balance["mode"], snapshot.seed)["keep"]
        data.balance = {"mode": balance["mode"], "before": len(data.train), "after": len(keep)}
        data.train = [data.train[index] for index in keep]
    if augmentation is not None:
        _add_augmented(data, snapshot=snapshot, augmentation=augmentation, spec=spec, agreement=agreement)
    return data


def _add_augmented(
    data: TrainingData,
    *,
    snapshot: Snapshot,
    augmentation: Augmentation,
    spec: TrainingSpec,
    agreement: dict[int, float],
) -> None:
    """Append the augmentation's rows to train, after any balancing (which concerns the people's rows).

    Each row is checked to be a train row made from this snapshot's train rows: validation and test never
    gain a row, whatever the file says. An augmented row carries its source row's agreement (curriculum)."""
    from training.augment.services import augmentation_rows

    if augmentation.snapshot_id != snapshot.pk:
        raise AugmentationDataError(AUGMENTATION_OTHER_SNAPSHOT.format(id=augmentation.pk, snapshot=snapshot.pk))
    train_ids = set(
        SnapshotItem.objects.filter(snapshot_id=augmentation.snapshot_id, split=Split.TRAIN).values_list(
            "item_id", flat=True
        )
    )
    text_field = "text" if spec.task == TASK_CLASSIFICATION else "prompt"
    added = 0
    for row in augmentation_rows(augmentation=augmentation):
        if row.get("split") != Split.TRAIN or row.get("augmented_from") not in train_ids:
            raise AugmentationDataError(AUGMENTATION_NOT_TRAIN.format(source=row.get("augmented_from")))
        recipe_row = _recipe_row(spec.task, row[text_field], row)
        if row["augmented_from"] in agreement:
            recipe_row["agreement"] = agreement[row["augmented_from"]]
        data.train.append(recipe_row)
        added += 1
    data.augmented = added


def snapshot_slice_groups(*, data: TrainingData, fields: list[str], task: str) -> dict[str, dict[str, list[str]]]:
    """Each evaluated split's slice of every row per field (training/ml/slices.py); empty without fields.

    The length band's edges are the tertiles of the train split's text (prompt) lengths.
    """
    if not fields:
        return {}
    from training.ml.slices import length_edges, slice_groups

    source = "text" if task == TASK_CLASSIFICATION else "prompt"
    edges = length_edges([row[source] for row in data.train])
    return {
        split: slice_groups(
            fields,
            texts=[row[source] for row in rows],
            metadata=data.metadata.get(split, [{}] * len(rows)),
            edges=edges,
        )
        for split, rows in (("validation", data.validation), ("test", data.test))
        if rows
    }


def distillation_unlabelled(*, project: Project, limit: int, seed: int) -> list[tuple[int, str]]:
    """(item id, text) of up to `limit` of the project's items without a final label that were never in a snapshot
    (so no validation or test item, whose label may be under review again, reaches a student's training): a draw
    by `seed`, in item id order."""
    ids = list(
        Item.objects.filter(project=project, split_row__isnull=True)
        .exclude(status=ItemStatus.APPROVED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if len(ids) > limit:
        ids = sorted(random.Random(seed).sample(ids, limit))
    texts = dict(Item.objects.filter(pk__in=ids).values_list("pk", "text"))
    return [(pk, texts[pk]) for pk in ids]


def prediction_scope(*, run: TrainingRun, scope: str) -> QuerySet[Item]:
    """The items a batch covers: the run's test split, the project's items without a final label, or both."""
    conditions = []
    if scope in (PredictionScope.TEST, PredictionScope.TEST_AND_UNLABELLED):
        test_items = SnapshotItem.objects.filter(snapshot_id=run.snapshot_id, split=Split.TEST).values("item_id")
        conditions.append(Q(pk__in=test_items))
    if scope in (PredictionScope.UNLABELLED, PredictionScope.TEST_AND_UNLABELLED):
        conditions.append(Q(project_id=run.project_id) & ~Q(status=ItemStatus.APPROVED))
    if not conditions:
        return Item.objects.none()
    return Item.objects.filter(reduce(operator.or_, conditions))


def prediction_missing_ids(*, run: TrainingRun, scope: str) -> list[int]:
    """Ids of the items in scope without an output of this run yet, in id order (read whole: the job writes
    outputs while it works through them, which must not shift an open cursor)."""
    done = ModelOutput.objects.filter(run=run).values("item_id")
    missing = prediction_scope(run=run, scope=scope).exclude(pk__in=done)
    return list(missing.order_by("pk").values_list("pk", flat=True))


def prediction_missing_count(*, run: TrainingRun, scope: str) -> int:
    """How many items in scope have no output of this run yet: what a batch over `scope` would predict."""
    done = ModelOutput.objects.filter(run=run).values("item_id")
    return prediction_scope(run=run, scope=scope).exclude(pk__in=done).count()


def prediction_scope_choices(*, run: TrainingRun) -> list[tuple[str, str, int]]:
    """(scope, its label, items it would predict) for the run page's Predict form."""
    return [
        (value, label, prediction_missing_count(run=run, scope=value)) for value, label in PredictionScope.choices
    ]


def item_texts(ids: list[int]) -> dict[int, str]:
    return dict(Item.objects.filter(pk__in=ids).values_list("pk", "text"))


def prediction_batches(*, run: TrainingRun) -> list[PredictionBatch]:
    """The run's newest batches, with `queue_place` (where a queued one stands in the training queue) and
    `progress_view` (done of total, ETA from its own rate)."""
    batches = list(run.prediction_batches.all()[:10])
    for batch in batches:
        batch.queue_place = prediction_batch_queue_place(batch)  # type: ignore[attr-defined]
        batch.progress_view = prediction_batch_progress(batch)  # type: ignore[attr-defined]
    return batches


def runs_with_queue_places(runs: Iterable[TrainingRun]) -> list[TrainingRun]:
    """The runs, each queued one with `queue_place` set (Redis is asked about queued runs only)."""
    shown = list(runs)
    for run in shown:
        run.queue_place = run_queue_place(run)  # type: ignore[attr-defined]
    return shown


def run_queue_place(run: TrainingRun) -> QueuePlace | None:
    """Where a queued run stands in the training queue (jobs ahead of it, workers); None once it left "queued"."""
    if run.status != RunStatus.QUEUED or not run.rq_job_id:
        return None
    return queue_place(TRAINING_QUEUE, run.rq_job_id)


def prediction_batch_queue_place(batch: PredictionBatch) -> QueuePlace | None:
    if batch.status != PredictionStatus.QUEUED:
        return None
    return queue_place(TRAINING_QUEUE, prediction_job_id(batch.pk))


def prediction_batch_progress(batch: PredictionBatch, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """done of total, percent, and while running the rate (items/s) and an ETA from this batch's own rate.

    The rate counts only what this batch wrote (`written`) over the time since it started: outputs that existed
    before it (a batch started again) are in `done` but took this batch no time.
    """
    total, done = batch.total, batch.done
    figures: dict[str, Any] = {
        "done": done,
        "total": total,
        "percent": round(100 * done / total) if total else (100 if batch.status == PredictionStatus.SUCCEEDED else 0),
        "items_per_s": None,
        "eta_s": None,
        "eta": "",
    }
    if batch.status != PredictionStatus.RUNNING or batch.started_at is None:
        return figures
    elapsed = ((now or timezone.now()) - batch.started_at).total_seconds()
    if batch.written and elapsed > 0:
        rate = batch.written / elapsed
        eta = max(total - done, 0) / rate
        figures.update(items_per_s=round(rate, 3), eta_s=round(eta, 1), eta=durations.exact(eta))
    return figures


def prediction_job_id(batch_id: int) -> str:
    return f"predict-{batch_id}"


def prediction_batch_list(*, run: TrainingRun) -> QuerySet[PredictionBatch]:
    """Every prediction batch of the run, newest first."""
    return PredictionBatch.objects.filter(run=run).order_by("-created_at", "-id")


def prediction_batch_get(*, run: TrainingRun, batch_id: int) -> PredictionBatch:
    batch = prediction_batch_list(run=run).filter(pk=batch_id).first()
    if batch is None:
        raise Http404(BATCH_NOT_FOUND)
    return batch


def run_events(*, run: TrainingRun, after: int | None = None, kind: str | None = None) -> QuerySet[RunEvent]:
    """The run's events in order; `after` an event id, only newer ones (how a client follows a live run)."""
    events = RunEvent.objects.filter(run=run).order_by("id")
    if after is not None:
        events = events.filter(pk__gt=after)
    if kind is not None:
        events = events.filter(kind=kind)
    return events


OUTPUT_ORDERS = ("item", "uncertainty", "confidence")


def run_outputs(
    *,
    run: TrainingRun,
    split: str | None = None,
    labelled: bool | None = None,
    label: str | None = None,
    min_confidence: float | None = None,
    max_confidence: float | None = None,
    order: str = "item",
) -> QuerySet[ModelOutput]:
    """The run's outputs, filtered: by the item's split in the run's snapshot (train, validation, test), by
    whether the item has a final label now, by the predicted label, by a confidence range; ordered by item id,
    by uncertainty (highest first: the items worth labelling next) or by confidence (lowest first)."""
    outputs = ModelOutput.objects.filter(run=run)
    if split is not None:
        in_split = SnapshotItem.objects.filter(snapshot_id=run.snapshot_id, split=split).values("item_id")
        outputs = outputs.filter(item_id__in=in_split)
    if labelled is not None:
        approved = Q(item__status=ItemStatus.APPROVED)
        outputs = outputs.filter(approved) if labelled else outputs.exclude(approved)
    if label is not None:
        outputs = outputs.filter(value__label=label)  # runs train single-label classifiers (TASK_BY_PROJECT_TYPE)
    if min_confidence is not None:
        outputs = outputs.filter(confidence__gte=min_confidence)
    if max_confidence is not None:
        outputs = outputs.filter(confidence__lte=max_confidence)
    ordering = {
        "item": ("item_id",),
        "uncertainty": (F("uncertainty").desc(nulls_last=True), "item_id"),
        "confidence": (F("confidence").asc(nulls_last=True), "item_id"),
    }[order]
    return outputs.order_by(*ordering)


@dataclass(frozen=True)
class ShownOutput:
    """An output and its value as people read it (spans: `marked`, the text with them marked and labelled)."""

    output: ModelOutput
    display: str
    marked: str = ""


def run_outputs_most_uncertain(*, run: TrainingRun, limit: int = 20) -> list[ShownOutput]:
    """The outputs the model was least sure of (highest entropy first): the next items worth labelling,
    each with its value as people read it."""
    outputs = ModelOutput.objects.filter(run=run).select_related("item")
    if run.task in (TASK_CLASSIFICATION, TASK_SPANS):
        outputs = outputs.order_by("-uncertainty", "item_id")
    else:
        outputs = outputs.order_by("item_id")
    return [ShownOutput(output, value_display(output.value)) for output in outputs[:limit]]


def run_span_prelabel_rows(*, run: TrainingRun) -> Iterator[tuple[dict[str, Any], int]]:
    """(spans value, item id) of the run's outputs on items nobody has annotated and no split holds."""
    outputs = ModelOutput.objects.filter(
        run=run, item__status=ItemStatus.NEW, item__split_row__isnull=True, item__project_id=run.project_id
    ).order_by("item_id")
    for value, item_id in outputs.values_list("value", "item_id").iterator(chunk_size=READ_CHUNK):
        if isinstance(value, dict) and "spans" in value:
            yield value, item_id


def run_span_prelabel_count(*, run: TrainingRun) -> int:
    return sum(1 for _ in run_span_prelabel_rows(run=run)) if run.task == TASK_SPANS else 0


def run_output_count(*, run: TrainingRun) -> int:
    return ModelOutput.objects.filter(run=run).count()


CLASSIFICATION_FIGURES = (("accuracy", "Accuracy"), ("macro_f1", "Macro-F1"), ("ece", "Calibration error (ECE)"),
                          ("loss", "Loss"))


SPAN_FIGURES = (("f1", "Entity F1"), ("precision", "Entity precision"), ("recall", "Entity recall"))


def task_figures(task: str) -> tuple[tuple[str, str], ...]:
    if task == TASK_CLASSIFICATION:
        return CLASSIFICATION_FIGURES
    return SPAN_FIGURES if task == TASK_SPANS else GENERATION_FIGURES


GENERATION_FIGURES = (("loss", "Loss"), ("perplexity", "Perplexity"), ("rouge_l", "ROUGE-L"), ("bleu", "BLEU"))


BASELINE_NAMES = {
    "majority": "Majority class",
    "tfidf_logreg": "TF-IDF + logistic regression",
    "logreg_embeddings": "Logistic regression on embeddings",
    "zero_shot": "Zero-shot (label descriptions)",
    "k_shot": "k-shot (nearest centroid)",
    "base_model": "Base model, not fine-tuned",
    "gazetteer": "Gazetteer (train split's entity strings)",
}


VERDICT_TONES = {"better": "good", "not_better": "warn", "too_small_to_tell": "warn"}


# Runs evaluated before comparisons existed still get the warning a model that learned nothing deserves.
LEARNED_NOTHING = (
    "This model learned nothing usable: its macro-F1 ({model:.3f}) is no better than always predicting the "
    "most frequent label ({majority:.3f})."
)


def _cell(figures: dict[str, Any], key: str) -> dict[str, Any]:
    """A figure with its 95% interval when the run recorded one."""
    interval = (figures.get("intervals") or {}).get(key)
    return {
        "value": figures.get(key),
        "interval": interval if isinstance(interval, list) and len(interval) == 2 else None,
    }


# PostgreSQL's jsonb stores keys shortest first: the page reads them in this order whatever the database did.
CHOSEN_ORDER = ("features", "C", "class_weight", "k")


def _chosen_text(chosen: dict[str, Any]) -> str:
    keys = [k for k in CHOSEN_ORDER if k in chosen] + sorted(k for k in chosen if k not in CHOSEN_ORDER)
    return ", ".join(f"{key}={chosen[key]}" for key in keys)


def _comparison(test: dict[str, Any], baselines: dict[str, Any]) -> dict[str, Any] | None:
    comparison = test.get("comparison")
    if comparison and comparison.get("message"):
        return {**comparison, "tone": VERDICT_TONES.get(comparison.get("verdict"), "warn")}
    model, majority = test.get("macro_f1"), (baselines.get("majority") or {}).get("macro_f1")
    if isinstance(model, int | float) and isinstance(majority, int | float) and model <= majority:
        message = LEARNED_NOTHING.format(model=model, majority=majority)
        return {"verdict": "not_better", "message": message, "tone": "warn"}
    return None


SLICE_METRIC_NAMES = {"macro_f1": "Macro-F1", "accuracy": "Accuracy", "rouge_l": "ROUGE-L"}


def slices_view(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """A per-slice report (training/ml/slices.py) laid out as one table per field, worst slice first."""
    if not report or not report.get("fields"):
        return None
    metrics = [name for name in report.get("metrics", []) if name in report.get("whole", {})]
    baseline = report.get("baseline")

    def row(entry: dict[str, Any]) -> dict[str, Any]:
        return {
            "value": entry["value"],
            "support": entry["support"],
            "status": entry["status"],
            "reasons": entry.get("reasons", []),
            "cells": [
                _cell({**entry["metrics"], "intervals": entry.get("intervals")}, name) for name in metrics
            ],
            "baseline": (entry.get("baseline") or {}).get(report.get("primary", "")),
        }

    return {
        "columns": [SLICE_METRIC_NAMES.get(name, name) for name in metrics],
        "whole": [report["whole"][name] for name in metrics],
        "primary": SLICE_METRIC_NAMES.get(report.get("primary", ""), report.get("primary")),
        "baseline": BASELINE_NAMES.get(baseline, baseline) if baseline else None,
        "rule": report.get("rule", ""),
        "flagged": report.get("flagged", 0),
        "worst": report.get("worst"),
        "fields": [{"field": f["field"], "rows": [row(entry) for entry in f["values"]]} for f in report["fields"]],
    }


def run_evaluation(run: TrainingRun) -> dict[str, Any] | None:
    """The test metrics laid out for the page: the verdict against the best baseline, the model's figures beside
    each baseline's (with 95% intervals where recorded), what each baseline is and what validation chose for it,
    per class, confusion. Runs made before intervals, baselines' methods or comparisons existed render too."""
    test = run.metrics.get("test") if run.metrics else None
    if not test:
        return None
    baselines = test.get("baselines", {})
    figures = task_figures(run.task)
    columns = [BASELINE_NAMES.get(name, name) for name in baselines]
    rows = [
        {"label": label, "model": _cell(test, key), "baselines": [_cell(b, key) for b in baselines.values()]}
        for key, label in figures
        if key in test
    ]
    comparison = _comparison(test, baselines)
    view: dict[str, Any] = {
        "n": test.get("n", 0),
        "columns": columns,
        "rows": rows,
        "samples": test.get("samples"),
        "comparison": comparison,
        "model_stands_out": comparison is None or comparison.get("verdict") == "better",
        "has_intervals": bool(test.get("intervals")),
        "baselines": [
            {
                "name": BASELINE_NAMES.get(name, name),
                "best": comparison is not None and comparison.get("best_baseline") == name,
                "method": b.get("method", ""),
                "chosen": _chosen_text(b.get("chosen") or {}),
                "validation_macro_f1": b.get("validation_macro_f1"),
                "label_texts": b.get("label_texts"),
            }
            for name, b in baselines.items()
            if b.get("method")
        ],
    }
    view["slices"] = slices_view(test.get("slices"))
    view["validation_slices"] = slices_view(test.get("validation_slices"))
    if "per_class" in test:
        view["per_class"] = [{"label": label, **figures} for label, figures in test["per_class"].items()]
    elif "per_label" in test:  # span runs: seqeval's entity figures per label
        view["per_class"] = [
            {"label": label, "precision": f.get("precision"), "recall": f.get("recall"), "f1": f.get("f1-score"),
             "support": f.get("support")}
            for label, f in test["per_label"].items()
        ]
    confusion = test.get("confusion_matrix")
    if confusion:
        view["confusion"] = {
            "labels": confusion["labels"],
            "rows": [
                {"label": label, "cells": [{"n": n, "hit": i == j} for j, n in enumerate(counts)]}
                for i, (label, counts) in enumerate(zip(confusion["labels"], confusion["matrix"], strict=True))
            ],
        }
    return view


def _scaled(value: Any, unit: str) -> str:
    """22,713,218 → "22.7 M", 41,216 → "41.2 k", 512 → "512" (with `unit` after: "MB", "kB", "B" for bytes)."""
    if not isinstance(value, int | float):
        return "—"
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.1f} {prefix}{unit}"
    return f"{value:.0f} {unit}".strip()


def _count_text(count: Any) -> str:
    return _scaled(count, "")


def _bytes_text(size: Any) -> str:
    return _scaled(size, "B")


def _ratio(student: Any, teacher: Any) -> float | None:
    numbers = all(isinstance(value, int | float) for value in (student, teacher))
    return student / teacher if numbers and teacher else None


def run_distillation(run: TrainingRun) -> dict[str, Any] | None:
    """A student run's page section: its teacher, the settings it learnt with, and (once evaluated) teacher and
    student side by side: layers, parameters, weight bytes, speed, test figures with intervals, and the paired
    difference. None for a run without a teacher."""
    if run.teacher_id is None:
        return None
    report = (run.metrics or {}).get("distillation") or {}
    spec = run.spec or {}
    view: dict[str, Any] = {
        "teacher_id": run.teacher_id,
        "temperature": spec.get("distill_temperature"),
        "alpha": spec.get("distill_alpha"),
        "unlabelled": spec.get("distill_unlabelled"),
        "rows": report.get("rows"),
        "n": report.get("n"),
        "agreement": report.get("agreement"),
        "measured": bool(report.get("student")),
    }
    if not view["measured"]:
        return view
    sizes = report.get("sizes") or {}
    student, teacher = report["student"], report["teacher"]
    size_s, size_t = sizes.get("student") or {}, sizes.get("teacher") or {}
    speed_s, speed_t = student["speed"]["items_per_s"], teacher["speed"]["items_per_s"]
    params = (size_s.get("parameters"), size_t.get("parameters"))
    weights = (size_s.get("weights_bytes"), size_t.get("weights_bytes"))
    view["rows_table"] = [
        _size_row("Transformer layers", size_s.get("layers", "—"), size_t.get("layers", "—"), ""),
        _size_row("Parameters", _count_text(params[0]), _count_text(params[1]), _times(_ratio(*params))),
        _size_row("Weights loaded to predict", _bytes_text(weights[0]), _bytes_text(weights[1]),
                  _times(_ratio(*weights))),
        _size_row("Speed (items/s)", f"{speed_s:.0f}", f"{speed_t:.0f}", _times(_ratio(speed_s, speed_t))),
    ]
    view["figures"] = [
        {
            "label": label,
            "teacher": _cell(teacher, key),
            "student": _cell(student, key),
            "difference": (report.get("difference") or {}).get(key),
        }
        for key, label in (("accuracy", "Accuracy"), ("macro_f1", "Macro-F1"))
        if key in student
    ]
    view["speed_passes"] = {
        name: [f"{value:.0f}" for value in figures["speed"].get("passes") or []]
        for name, figures in (("student", student), ("teacher", teacher))
    }
    return view


def _size_row(label: str, student: Any, teacher: Any, ratio: str) -> dict[str, Any]:
    return {"label": label, "student": student, "teacher": teacher, "ratio": ratio}


def _times(ratio: float | None) -> str:
    return f"{ratio:.2f}×" if ratio is not None else ""


def run_students(run: TrainingRun) -> list[TrainingRun]:
    """The runs distilled from `run`, newest first."""
    return list(run.students.order_by("-created_at", "-id"))


def compare_table(runs: list[TrainingRun]) -> dict[str, Any]:
    """Runs side by side: settings that differ between them, then each test figure with the best one marked."""
    specs = [run.spec for run in runs]
    keys = sorted({key for spec in specs for key in spec})
    differing = [key for key in keys if len({repr(spec.get(key)) for spec in specs}) > 1]
    figures = task_figures(runs[0].task) if runs else GENERATION_FIGURES
    lower = {"loss", "perplexity", "ece"}
    metric_rows = []
    for key, label in figures:
        values = [(run.metrics.get("test") or {}).get(key) for run in runs]
        known = [v for v in values if isinstance(v, int | float)]
        best = (min(known) if key in lower else max(known)) if known else None
        metric_rows.append({"label": label, "cells": [{"value": v, "best": v == best} for v in values]})
    return {
        "settings": [{"key": key, "values": [spec.get(key) for spec in specs]} for key in differing],
        "metrics": metric_rows,
    }


class _ZipSink:
    """A write-only file for zipfile that hands what was written to the generator streaming it."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._offset = 0

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        self._offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self._offset

    def flush(self) -> None:
        return None

    def close(self) -> None:  # zipfile never closes a file it was handed; here for its writable-file protocol
        return None

    def drain(self) -> Iterator[bytes]:
        chunks, self._chunks = self._chunks, []
        yield from chunks


def zip_chunks(directory: Path) -> Iterator[bytes]:
    """A zip of every file under `directory`, streamed as it is built (memory: one read block)."""
    sink = _ZipSink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if not path.is_file():
                continue
            info = zipfile.ZipInfo.from_file(path, arcname=str(path.relative_to(directory)))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as entry, path.open("rb") as source:
                while block := source.read(ZIP_READ_BLOCK):
                    entry.write(block)
                    yield from sink.drain()
            yield from sink.drain()
    yield from sink.drain()


def _eta_text(run: TrainingRun, progress: dict[str, Any]) -> str:
    """The training loop's ETA while it trains; after it, the current phase's own (empty until it has a rate)."""
    if not run.is_active:
        return ""
    if progress.get("phase") == "training":
        return durations.exact(progress.get("eta_s"))
    return durations.exact(progress.get("phase_eta_s"))


def run_progress_view(run: TrainingRun) -> dict[str, Any]:
    """The figures of the live panel from run.progress: step of total, percent, epoch, ETA, rate, losses."""
    progress = run.progress or {}
    step, total = progress.get("step") or 0, progress.get("total_steps") or 0
    validation = progress.get("validation") or {}
    return {
        "phase": progress.get("phase", ""),
        "step": step,
        "total": total,
        "percent": round(100 * step / total) if total else 0,
        "epoch": progress.get("epoch"),
        "epochs": run.spec.get("epochs"),
        "eta": _eta_text(run, progress),
        "phase_done": progress.get("phase_done"),
        "phase_total": progress.get("phase_total"),
        "phase_unit": progress.get("phase_unit") or "items",
        "phase_percent": round(100 * (progress.get("phase_done") or 0) / progress["phase_total"])
        if progress.get("phase_total")
        else 0,
        "elapsed": durations.exact(progress.get("elapsed_s")),
        "lr": progress.get("lr"),
        "train_loss": progress.get("train_loss"),
        "samples_per_s": progress.get("samples_per_s"),
        "validation": {k: v for k, v in validation.items() if k in EVAL_FIGURES},
        "rows": progress.get("rows") or {},
        "balance": progress.get("balance"),
        "resumed_from_step": progress.get("resumed_from_step"),
    }
