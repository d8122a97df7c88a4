"""Writes for training: start, claim, progress, finish, cancel, resume and sweep runs; prediction batches.

Every status change is a conditional UPDATE on the status it expects (queued → running → succeeded | failed |
cancelled), so a job delivered twice, a cancel racing a finish, or a sweep racing a late heartbeat each have
exactly one winner, and the row in the database, never Redis, says what happened. Jobs are enqueued on commit
with deterministic ids; the queue is only the way to reach a worker.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import django_rq
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from annotation.annotate.services import item_prelabels_set
from annotation.models import Project, Snapshot
from annotation.webhooks import events as webhook_events
from core.errors import ServiceError
from training.augment.services import augmentation_for_run
from training.ml.registry import SMOLLM2, RegistryError
from training.models import (
    Augmentation,
    ModelOutput,
    PredictionBatch,
    PredictionScope,
    PredictionStatus,
    RunEvent,
    RunStatus,
    TrainingRun,
)
from training.runs import selectors
from training.spec import METHOD_FULL, TASK_CLASSIFICATION, TASK_SPANS, SpecError, TrainingSpec

QUEUE = selectors.TRAINING_QUEUE  # runs and prediction batches; imports and scans have their own queues


SWEEP_QUEUE = "default"  # not "training": a worker busy training must not delay the sweep


SWEEP_EVERY = dt.timedelta(minutes=1)


# The sweep job alternates between two fixed ids: it schedules its successor under the other id, because
# RQ still writes the running job's own id when that job finishes. At most one of the two is ever pending.
SWEEP_JOB_IDS = ("runs-sweep-a", "runs-sweep-b")


PENDING_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED)


NAME_MAX = 200


MULTI_LABEL_UNSUPPORTED = (
    "Multi-label projects cannot be trained yet: the training recipe learns one label per item. "
    "Train a single-label or an instruction project."
)


def no_recipe_message(project: Project) -> str:
    """Why the run pages cannot train this project's task type."""
    return MULTI_LABEL_UNSUPPORTED


INVALID_SETTINGS = "Some training settings are invalid; see the fields marked."


UNKNOWN_BASE_MODEL = "must be one of the registered base models: {names}"


WRONG_TASK_BASE_MODEL = "{name} cannot be the base of this task's model; use one of: {names}"


FREEZE_TOO_MANY = "must be at most the base model's {layers} layers"


STUDENT_TOO_DEEP = "must be fewer than the base model's {layers} layers (0 keeps them all)"


DISTIL_NOT_CLASSIFICATION = (
    "Knowledge distillation is for classification runs: distilling an instruction (causal-LM) model into a "
    "smaller one is not supported."
)


DISTIL_NOT_FINISHED = "Only a run that finished training and saved its model can be a teacher."


DISTIL_NOT_SMALLER = "must make the student smaller than its teacher: keep fewer than the teacher's {layers} layers"


# A student starts from the teacher's data settings; it is trained whole (spec.py explains why) at a rate measured
# by bench/distill.py, with half of its teacher's layers.
DISTIL_COPIED = ("max_length", "batch_size", "seed", "class_weights", "curriculum", "epochs", "early_stopping_metric",
                 "early_stopping_patience", "eval_steps", "save_steps")
DISTIL_LEARNING_RATE = 1e-4


CLASS_WEIGHT_LABEL = "{label!r} is not a label of this snapshot ({labels})"


NO_TRAIN_ROWS = "This snapshot has no train-split rows to learn from."


TRAIN_ONE_LABEL = (
    "The snapshot's train split has items of one label only ({label!r}): a classifier learns to tell labels apart, "
    "so it needs train items of at least 2 labels. Label and review items of another label, then take a new snapshot."
)


NAME_TOO_LONG = f"must be at most {NAME_MAX} characters"


NOT_CANCELLABLE = "Only a queued or running run can be cancelled."


NOT_RESUMABLE = "Only a failed or cancelled run can be resumed."


NO_CHECKPOINT = "This run saved no checkpoint to resume from: start a new run instead."


ALREADY_RESUMING = "This run is already being resumed by another run; wait for that one."


NO_ARTIFACT = "This run has no saved model: only a run that trained and finished has one."


PREDICTIONS_ACTIVE = "A prediction batch of this run is already queued or running."


NOTHING_TO_PREDICT = "Nothing to predict: every item of {scope} already has an output of this model, or there is none."


UNKNOWN_SCOPE = "Choose which items to predict: {choices}."


ABANDONED = "abandoned: the worker stopped (heartbeat lost)"


BATCH_ABANDONED = "abandoned: the worker stopped (heartbeat lost); start the batch again to finish it"


class RunInputError(ServiceError):
    """Training settings with one or more invalid fields; `errors` maps each field to its message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__(INVALID_SETTINGS, field=next(iter(errors), None))
        self.errors = dict(errors)


def job_id(run_id: int) -> str:
    return f"train-{run_id}"


prediction_job_id = selectors.prediction_job_id


def event_add(*, run: TrainingRun, kind: str, step: int = 0, data: Mapping[str, Any] | None = None) -> RunEvent:
    return RunEvent.objects.create(run=run, kind=kind, step=step, data=dict(data or {}))


def log_event(*, run: TrainingRun, message: str, step: int = 0) -> RunEvent:
    return event_add(run=run, kind=RunEvent.Kind.LOG, step=step, data={"message": message})


def _model_layers(name: str) -> int | None:
    """The base model's layer count from its config.json; None when unknown here (not converted yet)."""
    registry = selectors.model_registry()
    if name == SMOLLM2 and not (registry.cache_dir / SMOLLM2 / "config.json").is_file():
        return None  # converted from its GGUF file on first use, by the worker
    try:
        config = registry.resolve(name) / "config.json"
    except RegistryError:
        return None
    layers = json.loads(config.read_text()).get("num_hidden_layers")
    return layers if isinstance(layers, int) else None


def _input_errors(*, snapshot: Snapshot, data: Mapping[str, Any], spec: TrainingSpec | None) -> dict[str, str]:
    """What TrainingSpec cannot know: the registry, the model's depth, the snapshot's labels and rows."""
    errors: dict[str, str] = {}
    registry = selectors.model_registry()
    names = registry.names()
    base_model = data.get("base_model")
    if isinstance(base_model, str) and base_model.strip() and base_model not in names:
        errors["base_model"] = UNKNOWN_BASE_MODEL.format(names=", ".join(names))
    elif spec is not None and spec.base_model not in registry.names_for(spec.task):
        fitting = ", ".join(registry.names_for(spec.task))
        errors["base_model"] = WRONG_TASK_BASE_MODEL.format(name=spec.base_model, names=fitting)
    if spec is None:
        return errors
    if spec.method == METHOD_FULL and spec.freeze_layers and "base_model" not in errors:
        layers = _model_layers(spec.base_model)
        if layers is not None and spec.freeze_layers > layers:
            errors["freeze_layers"] = FREEZE_TOO_MANY.format(layers=layers)
    if spec.student_layers and "base_model" not in errors:
        layers = _model_layers(spec.base_model)
        if layers is not None and spec.student_layers >= layers:
            errors["student_layers"] = STUDENT_TOO_DEEP.format(layers=layers)
    if spec.task == TASK_CLASSIFICATION and spec.class_weights:
        labels = selectors.snapshot_labels(snapshot)
        unknown = [label for label in spec.class_weights if label not in labels]
        if unknown:
            errors["class_weights"] = CLASS_WEIGHT_LABEL.format(label=unknown[0], labels=", ".join(labels))
    return errors


def run_start_blocker(*, snapshot: Snapshot) -> ServiceError | None:
    """Why no run can be trained on `snapshot` whatever its settings, or None: checked before a run is queued (so the
    owner learns it at once, not when the queued job fails) and by the run form to disable its button."""
    task = selectors.project_task(snapshot.project)
    if task is None:
        return ServiceError(no_recipe_message(snapshot.project), field="task")
    if not selectors.snapshot_split_counts(snapshot)["train"]:
        return ServiceError(NO_TRAIN_ROWS, field="snapshot")
    if task == TASK_CLASSIFICATION:
        labels = selectors.snapshot_train_label_counts(snapshot)
        if len(labels) < 2:
            return ServiceError(TRAIN_ONE_LABEL.format(label=next(iter(labels), "")), field="snapshot")
    return None


def run_spec_check(*, snapshot: Snapshot, data: Mapping[str, Any]) -> TrainingSpec:
    """The validated spec for training on `snapshot`, or RunInputError naming every invalid field at once."""
    blocker = run_start_blocker(snapshot=snapshot)
    if blocker is not None:
        raise blocker
    task = selectors.project_task(snapshot.project)
    data = {**data, "task": task}
    spec: TrainingSpec | None = None
    try:
        spec = TrainingSpec.from_dict(data)
        errors: dict[str, str] = {}
    except SpecError as exc:
        errors = dict(exc.errors)
    errors.update(_input_errors(snapshot=snapshot, data=data, spec=spec))
    if errors or spec is None:
        raise RunInputError(errors)
    return spec


def run_start(
    *,
    snapshot: Snapshot,
    user: User,
    spec_data: Mapping[str, Any],
    name: str = "",
    augmentation_id: int | str | None = None,
) -> TrainingRun:
    """Validate everything, create the queued run, and enqueue its job once the row is committed.

    `augmentation_id`: a succeeded augmentation of this snapshot whose rows join the train split (none by default).
    Nothing is written or queued when any field is invalid.
    """
    name = (name or "").strip()
    errors = {"name": NAME_TOO_LONG} if len(name) > NAME_MAX else {}
    augmentation = None
    try:
        augmentation = augmentation_for_run(snapshot=snapshot, augmentation_id=augmentation_id)
    except ServiceError as exc:
        errors["augmentation"] = exc.message
    try:
        spec = run_spec_check(snapshot=snapshot, data=spec_data)
    except RunInputError as exc:
        raise RunInputError({**exc.errors, **errors}) from None
    if errors:
        raise RunInputError(errors)
    return _run_create(snapshot=snapshot, user=user, spec=spec, name=name, augmentation=augmentation)


def run_distil_defaults(*, teacher: TrainingRun) -> dict[str, Any]:
    """The settings a student of `teacher` starts from: its data settings, the same encoder with half its layers,
    trained whole, temperature 2, alpha 0.5, with the project's unlabelled items."""
    spec = teacher.spec or {}
    depth = teacher_depth(teacher)
    return {
        **TrainingSpec.defaults(TASK_CLASSIFICATION, method=METHOD_FULL).to_dict(),
        **{key: spec[key] for key in DISTIL_COPIED if key in spec},
        "base_model": teacher.base_model,
        "method": METHOD_FULL,
        "learning_rate": DISTIL_LEARNING_RATE,
        "student_layers": max(1, depth // 2) if depth and depth > 1 else 0,
        "freeze_layers": 0,
        "distill_temperature": 2.0,
        "distill_alpha": 0.5,
        "distill_unlabelled": True,
    }


def teacher_depth(teacher: TrainingRun) -> int | None:
    """How many transformer layers the teacher's model has: its own student_layers, else its base model's."""
    kept = (teacher.spec or {}).get("student_layers")
    return kept if isinstance(kept, int) and kept > 0 else _model_layers(teacher.base_model)


def run_distil_blocker(*, teacher: TrainingRun) -> ServiceError | None:
    """Why `teacher` cannot teach a student whatever the settings, or None (the run page hides its action then)."""
    if teacher.task != TASK_CLASSIFICATION:
        return ServiceError(DISTIL_NOT_CLASSIFICATION, field="teacher")
    if teacher.status != RunStatus.SUCCEEDED or selectors.run_artifact_path(teacher) is None:
        return ServiceError(DISTIL_NOT_FINISHED, field="teacher")
    return run_start_blocker(snapshot=teacher.snapshot)


def run_distil(*, teacher: TrainingRun, user: User, spec_data: Mapping[str, Any], name: str = "") -> TrainingRun:
    """Queue a student of `teacher`: a run on the teacher's snapshot (so the same validation and test splits, with
    their human labels) that learns from the teacher's soft labels too. Fields left out take
    `run_distil_defaults`; the student must be smaller (fewer layers of the same encoder, or another encoder).

    Nothing is written or queued when anything is invalid.
    """
    blocker = run_distil_blocker(teacher=teacher)
    if blocker is not None:
        raise blocker
    name = (name or "").strip()
    errors = {"name": NAME_TOO_LONG} if len(name) > NAME_MAX else {}
    data = {**run_distil_defaults(teacher=teacher), **spec_data}
    depth, layers = teacher_depth(teacher), data.get("student_layers")
    if data.get("base_model") == teacher.base_model and depth and isinstance(layers, int) and layers <= 0:
        errors["student_layers"] = DISTIL_NOT_SMALLER.format(layers=depth)
    try:
        spec = run_spec_check(snapshot=teacher.snapshot, data=data)
    except RunInputError as exc:
        raise RunInputError({**exc.errors, **errors}) from None
    if spec.base_model == teacher.base_model and depth and spec.student_layers >= depth:
        errors.setdefault("student_layers", DISTIL_NOT_SMALLER.format(layers=depth))
    if errors:
        raise RunInputError(errors)
    name = name or f"student of run {teacher.pk}"
    return _run_create(snapshot=teacher.snapshot, user=user, spec=spec, name=name, teacher=teacher)


def _run_create(
    *,
    snapshot: Snapshot,
    user: User,
    spec: TrainingSpec,
    name: str,
    resumed_from: TrainingRun | None = None,
    augmentation: Augmentation | None = None,
    teacher: TrainingRun | None = None,
) -> TrainingRun:
    with transaction.atomic():
        run = TrainingRun.objects.create(
            project_id=snapshot.project_id,
            snapshot=snapshot,
            snapshot_hash=snapshot.content_hash,
            augmentation=augmentation,
            name=name,
            task=spec.task,
            base_model=spec.base_model,
            spec=spec.to_dict(),
            created_by=user,
            resumed_from=resumed_from,
            teacher=teacher,
        )
        run.rq_job_id = job_id(run.pk)
        TrainingRun.objects.filter(pk=run.pk).update(rq_job_id=run.rq_job_id)
        who = getattr(user, "username", "")
        how = (f", resuming run {resumed_from.pk}" if resumed_from else "") + (
            f", a student of run {teacher.pk}" if teacher else ""
        )
        log_event(run=run, message=f"Queued by {who}{how}")
        transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def _enqueue(run_id: int) -> None:
    # By dotted path: training.jobs imports this module, and the web process never imports the job code.
    django_rq.get_queue(QUEUE).enqueue(
        "training.runs.jobs.training_run_job",
        run_id,
        job_id=job_id(run_id),
        job_timeout=settings.LABELLOOP_TRAINING_JOB_TIMEOUT,
    )
    runs_sweep_ensure()


def run_claim(*, run_id: int, worker: str) -> TrainingRun | None:
    """queued → running. None when another delivery took it, or it was cancelled before it started."""
    now = timezone.now()
    claimed = TrainingRun.objects.filter(pk=run_id, status=RunStatus.QUEUED, cancel_requested=False).update(
        status=RunStatus.RUNNING,
        started_at=now,
        heartbeat_at=now,
        worker=worker[:255],
        checkpoint_dir=f"{selectors.RUNS_DIR}/{run_id}/checkpoints",
        progress={"phase": "starting"},
    )
    if not claimed:
        return None
    run = TrainingRun.objects.select_related("project", "snapshot", "resumed_from", "teacher").get(pk=run_id)
    log_event(run=run, message=f"Started on {worker}")
    return run


def run_heartbeat(*, run_id: int) -> bool:
    """Stamp the heartbeat; False when the run is no longer running (cancelled, or swept as abandoned)."""
    return bool(
        TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(heartbeat_at=timezone.now())
    )


def run_should_stop(*, run_id: int) -> bool:
    """True once a cancel was asked for, or the run stopped being "running" (a sweep marked it abandoned)."""
    return not TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING, cancel_requested=False).exists()


def run_progress_set(*, run_id: int, progress: Mapping[str, Any]) -> None:
    TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
        progress=_json_safe(progress), heartbeat_at=timezone.now()
    )


def _json_safe(value: Any) -> Any:
    """NaN and infinities (a diverged loss) become None: JSON columns and browsers reject them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def run_event_record(*, run: TrainingRun, kind: str, step: int, data: Mapping[str, Any]) -> None:
    event_add(run=run, kind=kind, step=step, data=_json_safe(data))


def run_finish(
    *,
    run: TrainingRun,
    status: str,
    metrics: Mapping[str, Any],
    progress: Mapping[str, Any],
    artifact_dir: Path | None,
    message: str,
) -> bool:
    """running → succeeded | cancelled with the metrics and the artifact; False when the run was swept meanwhile."""
    relative = str(artifact_dir.relative_to(settings.MEDIA_ROOT)) if artifact_dir is not None else ""
    with transaction.atomic():
        finished = TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
            status=status,
            metrics=_json_safe(metrics),
            progress=_json_safe(progress),
            artifact_dir=relative,
            finished_at=timezone.now(),
        )
        if finished:
            log_event(run=run, message=message, step=int(progress.get("step") or 0))
            webhook_events.run_finished(run=TrainingRun.objects.get(pk=run.pk), status=status)
            if status == RunStatus.SUCCEEDED:
                # The outputs people rate (training/ratings.py) are queued once the run's row is committed.
                transaction.on_commit(lambda: prediction_batch_after_run(run_id=run.pk))
    return bool(finished)


def run_fail(*, run: TrainingRun, error: str) -> bool:
    with transaction.atomic():
        failed = TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
            status=RunStatus.FAILED, error=error[:5000], finished_at=timezone.now()
        )
        if failed:
            log_event(run=run, message=f"Failed: {error[:500]}")
            webhook_events.run_finished(run=TrainingRun.objects.get(pk=run.pk), status=RunStatus.FAILED)
    return bool(failed)


def run_cancel(*, run: TrainingRun, user: User) -> TrainingRun:
    """A queued run is cancelled at once; a running one is asked to stop and stops within one training step."""
    now = timezone.now()
    who = getattr(user, "username", "")
    with transaction.atomic():
        if TrainingRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
            status=RunStatus.CANCELLED, cancel_requested=True, finished_at=now
        ):
            log_event(run=run, message=f"Cancelled by {who} before it started")
            webhook_events.run_finished(run=TrainingRun.objects.get(pk=run.pk), status=RunStatus.CANCELLED)
        elif TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING, cancel_requested=False).update(
            cancel_requested=True
        ):
            log_event(run=run, message=f"Cancel requested by {who}")
        elif not TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).exists():
            raise ServiceError(NOT_CANCELLABLE)
    run.refresh_from_db()
    return run


def run_resume(*, run: TrainingRun, user: User) -> TrainingRun:
    """A new run on the same snapshot and spec that continues from `run`'s newest checkpoint."""
    if run.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
        raise ServiceError(NOT_RESUMABLE)
    if selectors.run_resume_point(run) is None:
        raise ServiceError(NO_CHECKPOINT)
    spec = TrainingSpec.from_dict(run.spec)
    name = (run.name or f"run {run.pk}")[: NAME_MAX - 10] + " (resumed)"
    try:
        return _run_create(
            snapshot=run.snapshot,
            user=user,
            spec=spec,
            name=name,
            resumed_from=run,
            augmentation=run.augmentation,
            teacher=run.teacher,
        )
    except IntegrityError:
        raise ServiceError(ALREADY_RESUMING) from None


def runs_mark_abandoned(*, stale_after_s: float | None = None) -> list[int]:
    """Fail every running run (and prediction batch) whose heartbeat is older than the stale threshold.

    Only the sweep calls it (`jobs.runs_sweep_job` every minute, `manage.py runs_sweep`): reads never write,
    they show such a run as `heartbeat_lost` until then.
    """
    stale = settings.LABELLOOP_RUN_STALE_AFTER_S if stale_after_s is None else stale_after_s
    now = timezone.now()
    cutoff = now - dt.timedelta(seconds=stale)
    swept = []
    for run_id in TrainingRun.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=cutoff).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            if TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING, heartbeat_at__lt=cutoff).update(
                status=RunStatus.FAILED, error=ABANDONED, finished_at=now
            ):
                RunEvent.objects.create(run_id=run_id, kind=RunEvent.Kind.LOG, data={"message": ABANDONED})
                swept.append(run_id)
                webhook_events.run_finished(run=TrainingRun.objects.get(pk=run_id), status=RunStatus.FAILED)
    PredictionBatch.objects.filter(status=PredictionStatus.RUNNING, heartbeat_at__lt=cutoff).update(
        status=PredictionStatus.FAILED, error=BATCH_ABANDONED, finished_at=now
    )
    return swept


def _job_pending(rq_job_id: str, connection: Any) -> bool:
    try:
        job = Job.fetch(rq_job_id, connection=connection)
    except NoSuchJobError:
        return False
    return job.get_status(refresh=False) in PENDING_JOB_STATUSES


def runs_requeue_lost() -> list[int]:
    """Queued runs whose job is gone from Redis (flushed, or Redis was down at commit) get their job again."""
    connection = django_rq.get_queue(QUEUE).connection  # the queue starts the embedded Redis if need be
    cutoff = timezone.now() - dt.timedelta(seconds=settings.LABELLOOP_RUN_STALE_AFTER_S)
    lost = [
        run_id
        for run_id in TrainingRun.objects.filter(status=RunStatus.QUEUED, created_at__lt=cutoff).values_list(
            "pk", flat=True
        )
        if not _job_pending(job_id(run_id), connection)
    ]
    for run_id in lost:
        _enqueue(run_id)
    return lost


def prediction_batches_requeue_lost() -> list[int]:
    """Queued prediction batches whose job is gone from Redis get their job again, as queued runs do."""
    connection = django_rq.get_queue(QUEUE).connection
    cutoff = timezone.now() - dt.timedelta(seconds=settings.LABELLOOP_RUN_STALE_AFTER_S)
    lost = [
        batch_id
        for batch_id in PredictionBatch.objects.filter(
            status=PredictionStatus.QUEUED, created_at__lt=cutoff
        ).values_list("pk", flat=True)
        if not _job_pending(prediction_job_id(batch_id), connection)
    ]
    for batch_id in lost:
        _enqueue_predictions(batch_id)
    return lost


def runs_sweep_ensure() -> None:
    """Schedule the every-minute sweep unless one of its two ids is pending already."""
    queue = django_rq.get_queue(SWEEP_QUEUE)
    if not any(_job_pending(sweep_id, queue.connection) for sweep_id in SWEEP_JOB_IDS):
        runs_sweep_schedule(after=SWEEP_JOB_IDS[1])


def runs_sweep_schedule(*, after: str) -> None:
    """Schedule the next sweep a minute from now, under the id that is not `after`."""
    next_id = SWEEP_JOB_IDS[0] if after == SWEEP_JOB_IDS[1] else SWEEP_JOB_IDS[1]
    django_rq.get_queue(SWEEP_QUEUE).enqueue_in(
        SWEEP_EVERY, "training.runs.jobs.runs_sweep_job", job_id=next_id, result_ttl=0, failure_ttl=3600
    )


def prediction_batch_blocker(*, run: TrainingRun, scope: str | None = None) -> ServiceError | None:
    """Why no prediction batch of `run` (over `scope`, when given) can be queued now, or None: checked before
    enqueueing, and by the run page to disable its Predict button and the scopes with nothing to predict."""
    if scope is not None and scope not in PredictionScope.values:
        return ServiceError(UNKNOWN_SCOPE.format(choices=", ".join(PredictionScope.values)), field="scope")
    if run.status not in (RunStatus.SUCCEEDED, RunStatus.CANCELLED) or selectors.run_artifact_path(run) is None:
        return ServiceError(NO_ARTIFACT)
    if run.prediction_batches.filter(status__in=(PredictionStatus.QUEUED, PredictionStatus.RUNNING)).exists():
        return ServiceError(PREDICTIONS_ACTIVE)
    if scope is not None and not selectors.prediction_missing_count(run=run, scope=scope):
        return ServiceError(NOTHING_TO_PREDICT.format(scope=PredictionScope(scope).label.lower()), field="scope")
    return None


def prediction_batch_start(*, run: TrainingRun, user: User, scope: str) -> PredictionBatch:
    """Check the batch can run (`prediction_batch_blocker`: nothing is queued otherwise), create it and enqueue its
    job once the row is committed."""
    blocker = prediction_batch_blocker(run=run, scope=scope)
    if blocker is not None:
        raise blocker
    try:
        with transaction.atomic():
            batch = PredictionBatch.objects.create(run=run, scope=scope, created_by=user)
            transaction.on_commit(lambda: _enqueue_predictions(batch.pk))
    except IntegrityError:
        raise ServiceError(PREDICTIONS_ACTIVE) from None
    return batch


def prediction_batch_after_run(*, run_id: int) -> PredictionBatch | None:
    """Predict the test split and the unlabelled items of a run that just succeeded, for raters to judge.

    Once per run: a run that has any batch already (a second call, or an owner who was quicker) gets none. A
    refusal is logged on the run rather than raised, so it cannot fail the training job that succeeded.
    """
    run = TrainingRun.objects.select_related("created_by").get(pk=run_id)
    if run.prediction_batches.exists():
        return None
    try:
        return prediction_batch_start(run=run, user=run.created_by, scope=PredictionScope.TEST_AND_UNLABELLED)
    except ServiceError as exc:
        log_event(run=run, message=f"Predictions for rating not queued: {exc.message}")
        return None


def _enqueue_predictions(batch_id: int) -> None:
    django_rq.get_queue(QUEUE).enqueue(
        "training.runs.jobs.prediction_batch_job",
        batch_id,
        job_id=prediction_job_id(batch_id),
        job_timeout=settings.LABELLOOP_TRAINING_JOB_TIMEOUT,
    )


def prediction_batch_claim(*, batch_id: int) -> PredictionBatch | None:
    now = timezone.now()
    if not PredictionBatch.objects.filter(pk=batch_id, status=PredictionStatus.QUEUED).update(
        status=PredictionStatus.RUNNING, started_at=now, heartbeat_at=now
    ):
        return None
    batch = PredictionBatch.objects.select_related("run", "run__project", "run__snapshot").get(pk=batch_id)
    scope = selectors.prediction_scope(run=batch.run, scope=batch.scope)
    batch.total = scope.count()
    batch.done = scope.filter(model_outputs__run_id=batch.run_id).count()
    PredictionBatch.objects.filter(pk=batch_id).update(total=batch.total, done=batch.done)
    return batch


def prediction_batch_heartbeat(*, batch_id: int) -> bool:
    return bool(
        PredictionBatch.objects.filter(pk=batch_id, status=PredictionStatus.RUNNING).update(
            heartbeat_at=timezone.now()
        )
    )


def model_outputs_write(*, batch: PredictionBatch, outputs: Iterable[ModelOutput]) -> int:
    """Store a chunk of outputs; the (run, item) constraint drops any another delivery wrote. Returns the new ones."""
    outputs = list(outputs)
    with transaction.atomic():
        existing = ModelOutput.objects.filter(run_id=batch.run_id, item_id__in=[o.item_id for o in outputs]).count()
        ModelOutput.objects.bulk_create(outputs, ignore_conflicts=True)
        new = len(outputs) - existing
        batch.written += new
        batch.done += new
        PredictionBatch.objects.filter(pk=batch.pk, status=PredictionStatus.RUNNING).update(
            written=batch.written, done=batch.done, heartbeat_at=timezone.now()
        )
    return new


def prediction_batch_finish(*, batch: PredictionBatch) -> None:
    PredictionBatch.objects.filter(pk=batch.pk, status=PredictionStatus.RUNNING).update(
        status=PredictionStatus.SUCCEEDED, finished_at=timezone.now()
    )


def prediction_batch_fail(*, batch: PredictionBatch, error: str) -> None:
    PredictionBatch.objects.filter(pk=batch.pk, status=PredictionStatus.RUNNING).update(
        status=PredictionStatus.FAILED, error=error[:5000], finished_at=timezone.now()
    )


NOT_A_SPAN_RUN = "Only a span run's outputs are spans that can pre-annotate items; this run is a {task} run."
NO_SPAN_OUTPUTS = (
    "This run has no spans for items still to annotate: predict 'test and unlabelled' items first (the run queues "
    "that itself when it succeeds)."
)


def run_span_prelabels_apply(*, run: TrainingRun, user: User) -> int:
    """The span run's outputs on items nobody has annotated yet (never an item with a split: the test split is
    sacred) become those items' pre-annotations, which annotators correct on the annotate page when the project
    shows pre-labels. The outputs come from the run's prediction batch (an RQ job), so nothing here loads a model.
    Returns how many items were pre-annotated; an earlier pre-annotation of those items is replaced."""
    if run.task != TASK_SPANS:
        raise ServiceError(NOT_A_SPAN_RUN.format(task=run.task))
    rows = list(selectors.run_span_prelabel_rows(run=run))
    if not rows:
        raise ServiceError(NO_SPAN_OUTPUTS)
    written = item_prelabels_set(project=run.project, prelabels=rows)
    log_event(run=run, message=f"{getattr(user, 'username', '')} pre-annotated {written} new items with its spans")
    return written
