"""Django glue for one training run: the snapshot's rows → a Recipe, the recipe's callbacks → the database.

Imported only inside the RQ work horse (training/jobs.py imports it lazily), so torch and CUDA initialise in
the process that trains and never in the web server or the worker's parent. The recipe itself knows nothing
of Django; this module feeds it and writes what it reports, at a bounded rate:

- run.progress (status page, ETA) at most once a second and at the last step;
- a "train" RunEvent (the live charts) at most once a second, and less often as a run grows old, so a long
  run stays a few hundred chart points; an "eval" RunEvent after every validation;
- after training, each phase with a known amount of work (the test evaluation) reports items done of total and
  an ETA from its own rate (training/ml/progress.py), at most once a second and at its end; a phase change drops
  the previous phase's figures, so the training ETA never shows as "0 s" while the evaluation runs;
- the cancel flag is read at most once a second (and never more than once a step), so a cancel stops
  training within one step of being seen.

A student run (one with a teacher, knowledge distillation) first has the teacher's saved model score its train
rows and the project's unlabelled items ("teacher soft labels", kept in the run's folder as teacher/soft_labels.json),
trains on them, and after its own test evaluation measures itself beside the teacher on the test split: speed,
figures with intervals, and their paired difference; once saved, both models' parameters and weight bytes.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from core.errors import ServiceError
from training.augment.selectors import augmentation_summary
from training.ml.artifacts import ArtifactError, inference_weights_bytes
from training.ml.checkpoints import CheckpointError
from training.ml.data import DataError
from training.ml.distill import TeacherTargets, Timed, inference_parameters, teacher_comparison
from training.ml.modeling import ModelError, hf_model
from training.ml.predict import Predictor, class_logits
from training.ml.progress import PhaseProgress
from training.ml.recipe import STATUS_CANCELLED, STATUS_EARLY_STOPPED, Outcome, Recipe
from training.ml.registry import RegistryError
from training.models import RunEvent, RunStatus, TrainingRun
from training.runs import selectors, services
from training.spec import TASK_CLASSIFICATION, TASK_SPANS, SpecError, TrainingSpec

# Failures that say what is wrong with the data, the model or the settings: shown to the owner as they are.
EXPECTED_ERRORS = (
    DataError,
    ModelError,
    RegistryError,
    CheckpointError,
    ArtifactError,
    SpecError,
    ServiceError,
    selectors.AugmentationDataError,
)


PROGRESS_EVERY_S = 1.0


CANCEL_CHECK_EVERY_S = 1.0


MAX_TRAIN_EVENTS = 600


CHECKPOINTS = "checkpoints"


ARTIFACT = "artifact"


TRAINING = "training"


TEACHER_DIR = "teacher"


SOFT_LABELS_FILE = "soft_labels.json"


TEACHER_LABELS_DIFFER = "the teacher (run {run}) was trained on the labels {found}, the snapshot has {expected}"


TEACHER_HAS_NO_MODEL = "the teacher (run {run}) has no saved model any more"


HEADLINE = {TASK_CLASSIFICATION: ("accuracy", "macro_f1")}


GENERATION_HEADLINE = ("rouge_l", "bleu", "perplexity")


@dataclass(frozen=True)
class RunResult:
    """How a run ended, for `services.run_finish`."""

    status: str
    metrics: dict[str, Any]
    progress: dict[str, Any]
    artifact_dir: Path | None
    message: str


def scalars(figures: Mapping[str, Any]) -> dict[str, float]:
    """The plain numbers of a metrics dict (no per-class tables, matrices or samples)."""
    return {
        key: value
        for key, value in figures.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


class DatabaseCallbacks:
    """The recipe's should_stop / on_progress / on_eval, writing to the run's row and events at a bounded rate."""

    def __init__(self, run: TrainingRun, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.run = run
        self.progress: dict[str, Any] = {"phase": "starting"}
        self._clock = clock
        self._last_progress = -math.inf
        self._last_event = -math.inf
        self._last_cancel_check = -math.inf
        self._stop = False

    def phase(self, name: str, **figures: Any) -> None:
        """Enter phase `name`: the previous phase's own figures (and, once training is over, its ETA) go."""
        for key in [key for key in self.progress if key.startswith("phase_")]:
            del self.progress[key]
        if name != TRAINING:
            self.progress["eta_s"] = None
        self.progress.update(phase=name, **figures)
        self.flush()

    def phase_progress(self, name: str, total: int, *, unit: str = "items") -> PhaseProgress:
        """Enter phase `name` with `total` items to do; the PhaseProgress returned reports through on_phase_progress."""
        progress = PhaseProgress(name, total, unit=unit, report=self.on_phase_progress, clock=self._clock)
        self.phase(name, **{key: value for key, value in progress.figures().items() if key != "phase"})
        return progress

    def on_phase_progress(self, figures: dict[str, Any]) -> None:
        self.progress.update(figures)
        if figures["phase_done"] >= figures["phase_total"] or self._clock() - self._last_progress >= PROGRESS_EVERY_S:
            self.flush()

    def flush(self) -> None:
        services.run_progress_set(run_id=self.run.pk, progress=self.progress)
        self._last_progress = self._clock()

    def should_stop(self) -> bool:
        now = self._clock()
        if not self._stop and now - self._last_cancel_check >= CANCEL_CHECK_EVERY_S:
            self._last_cancel_check = now
            self._stop = services.run_should_stop(run_id=self.run.pk)
        return self._stop

    def on_progress(self, figures: dict[str, Any]) -> None:
        self.progress.update(figures, phase=TRAINING)
        now = self._clock()
        last = figures["step"] >= figures["total_steps"]
        if last or now - self._last_progress >= PROGRESS_EVERY_S:
            self.flush()
        event_every = max(PROGRESS_EVERY_S, figures.get("elapsed_s", 0.0) / MAX_TRAIN_EVENTS)
        if last or now - self._last_event >= event_every:
            self._last_event = now
            services.run_event_record(run=self.run, kind=RunEvent.Kind.TRAIN, step=figures["step"], data=figures)

    def on_eval(self, metrics: dict[str, Any]) -> None:
        figures = scalars(metrics)
        self.progress["validation"] = figures
        services.run_event_record(run=self.run, kind=RunEvent.Kind.EVAL, step=int(metrics["step"]), data=figures)
        self.flush()


def _outcome(outcome: Outcome) -> dict[str, Any]:
    return {
        "status": outcome.status,
        "step": outcome.step,
        "total_steps": outcome.total_steps,
        "epoch": outcome.epoch,
        "best_metric": outcome.best_metric,
        "best_step": outcome.best_step,
    }


def _summary(task: str, test: Mapping[str, Any]) -> str:
    names = HEADLINE.get(task, GENERATION_HEADLINE)
    figures = ", ".join(f"{name} {test[name]:.3g}" for name in names if isinstance(test.get(name), int | float))
    if not figures:
        return "no test split to evaluate on"
    verdict = (test.get("comparison") or {}).get("message")
    return f"{figures} on {test.get('n', 0)} test items" + (f". {verdict}" if verdict else "")


def train(run: TrainingRun) -> RunResult:
    """Train, evaluate on the test split beside the baselines, and save the artifact; see the module docstring.

    A cancelled run keeps what it learnt: the artifact is saved from where training stopped (unless it stopped
    before its first step), without the test evaluation the owner chose not to wait for.
    """
    spec = TrainingSpec.from_dict(run.spec)
    callbacks = DatabaseCallbacks(run)
    if spec.task == TASK_SPANS:
        from training.runs.span_training import span_run_train

        result: RunResult = span_run_train(run, callbacks)
        return result
    callbacks.phase("preparing data")
    data = selectors.snapshot_training_data(snapshot=run.snapshot, spec=spec, augmentation=run.augmentation)
    augmentation = augmentation_summary(run.augmentation)
    callbacks.progress["rows"] = data.counts()
    if data.balance:
        callbacks.progress["balance"] = data.balance
    resume = selectors.run_resume_point(run.resumed_from) if run.resumed_from is not None else None
    directory = selectors.run_dir(run)
    # The claim makes this the run's only execution, so anything already here is foreign (a database restored
    # with its ids reused) and must not be resumed from: a resume is a new run reading its parent's folder.
    shutil.rmtree(directory, ignore_errors=True)
    teacher = _Teacher.load(run, data.labels) if run.teacher_id is not None else None
    targets = teacher.targets(run, spec, data.train, callbacks, directory) if teacher is not None else None
    recipe = Recipe(
        spec,
        train=data.train,
        validation=data.validation,
        labels=data.labels or None,
        checkpoint_dir=directory / CHECKPOINTS,
        resume_from=resume.directory if resume is not None else None,
        registry=selectors.model_registry(),
        should_stop=callbacks.should_stop,
        on_progress=callbacks.on_progress,
        on_eval=callbacks.on_eval,
        teacher=targets,
    )
    callbacks.phase("loading model")
    recipe.setup()
    if resume is not None and recipe.resumed_from is not None:
        log_resumed(run, callbacks, step=recipe.state.step, parent=resume.run)
    callbacks.phase(TRAINING, total_steps=recipe.total_steps)
    outcome = recipe.train()
    metrics: dict[str, Any] = {"outcome": _outcome(outcome), "rows": data.counts()}
    if teacher is not None and targets is not None:
        metrics["distillation"] = teacher.summary(spec, targets)
    progress = {**callbacks.progress, "step": outcome.step, "total_steps": outcome.total_steps, "eta_s": 0}

    if outcome.status == STATUS_CANCELLED:
        artifact = None
        if outcome.step:
            callbacks.phase("saving")
            artifact = recipe.save(
                directory / ARTIFACT, snapshot_hash=run.snapshot_hash, metrics={}, augmentation=augmentation
            )
        kept = f"the model as of step {outcome.step} is saved" if artifact else "nothing was learnt yet"
        return RunResult(
            status=RunStatus.CANCELLED,
            metrics=metrics,
            progress={**progress, "phase": "cancelled"},
            artifact_dir=artifact,
            message=f"Cancelled at step {outcome.step} of {outcome.total_steps}; {kept}",
        )

    if data.test:
        evaluating = callbacks.phase_progress("evaluating", recipe.evaluation_items(len(data.test), baselines=True))
        groups = selectors.snapshot_slice_groups(data=data, fields=list(run.project.slice_fields or []), task=run.task)
        metrics["test"] = recipe.evaluate(
            data.test,
            baselines=True,
            label_descriptions=data.label_descriptions,
            on_batch=evaluating.advance,
            slice_groups=groups,
        )
    if teacher is not None and data.test:
        callbacks.phase("comparing with the teacher")
        metrics["distillation"].update(teacher.compare(recipe, data.test, data.labels))
    callbacks.phase("saving")
    artifact = recipe.save(
        directory / ARTIFACT,
        snapshot_hash=run.snapshot_hash,
        metrics=metrics.get("test", {}),
        augmentation=augmentation,
    )
    if teacher is not None:
        metrics["distillation"].update(teacher.sizes(recipe, artifact))
    how = "Stopped early" if outcome.status == STATUS_EARLY_STOPPED else "Finished"
    return RunResult(
        status=RunStatus.SUCCEEDED,
        metrics=metrics,
        progress={**progress, "phase": "done"},
        artifact_dir=artifact,
        message=f"{how} at step {outcome.step}: {_summary(run.task, metrics.get('test', {}))}",
    )


def log_resumed(run: TrainingRun, callbacks: DatabaseCallbacks, *, step: int, parent: TrainingRun) -> None:
    """A resumed run says where it continues from: in its progress (the page's "resumed at step") and its log."""
    callbacks.progress["resumed_from_step"] = step
    services.log_event(run=run, message=f"Resumed from checkpoint step {step} of run {parent.pk}", step=step)


class _Teacher:
    """A student run's teacher: its saved model, loaded once for the soft labels and the comparison after."""

    def __init__(self, run: TrainingRun, predictor: Predictor, directory: Path) -> None:
        self.run = run
        self.predictor = predictor
        self.directory = directory

    @classmethod
    def load(cls, student: TrainingRun, labels: list[str]) -> _Teacher:
        teacher = student.teacher
        assert teacher is not None
        directory = selectors.run_artifact_path(teacher)
        if directory is None:
            raise ArtifactError(TEACHER_HAS_NO_MODEL.format(run=teacher.pk))
        predictor = Predictor.load(directory, registry=selectors.model_registry())
        if predictor.labels != labels:
            found, expected = ", ".join(predictor.labels), ", ".join(labels)
            raise DataError(TEACHER_LABELS_DIFFER.format(run=teacher.pk, found=found, expected=expected))
        return cls(teacher, predictor, directory)

    def _logits(self, texts: list[str], on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        predictor = self.predictor
        return class_logits(
            predictor.model, predictor.tokenizer, texts, max_length=predictor.max_length, batch_size=64,
            device=predictor.device, bf16=predictor.bf16, on_batch=on_batch,
        )

    def targets(
        self, run: TrainingRun, spec: TrainingSpec, train: list[dict[str, Any]], callbacks: DatabaseCallbacks,
        directory: Path,
    ) -> TeacherTargets:
        """The teacher's logits on the train rows and (when the spec says so) on the project's unlabelled items,
        written to the run's folder as a record of exactly what the student learnt from.

        A resumed student takes its parent's record when it fits (same teacher, as many train rows, every
        unlabelled item still there), so it continues on the very examples the parent trained on, even if items
        were labelled or added since."""
        cached = self._cached(run, len(train)) if run.resumed_from_id is not None else None
        if cached is not None:
            targets, unlabelled_ids = cached
        else:
            unlabelled = (
                selectors.distillation_unlabelled(
                    project=run.project, limit=settings.LABELLOOP_DISTIL_UNLABELLED_MAX, seed=spec.seed
                )
                if spec.distill_unlabelled
                else []
            )
            texts = [row["text"] for row in train] + [text for _, text in unlabelled]
            scoring = callbacks.phase_progress("teacher soft labels", len(texts))
            logits = self._logits(texts, scoring.advance)
            targets = TeacherTargets(
                train_logits=logits[: len(train)],
                unlabelled_texts=[text for _, text in unlabelled],
                unlabelled_logits=logits[len(train) :],
            )
            unlabelled_ids = [item_id for item_id, _ in unlabelled]
        record = {
            "teacher_run": self.run.pk,
            "labels": self.predictor.labels,
            "temperature": spec.distill_temperature,
            "train_logits": targets.train_logits.astype(float).tolist(),
            "unlabelled": [
                {"item_id": item_id, "logits": row.astype(float).tolist()}
                for item_id, row in zip(unlabelled_ids, targets.unlabelled_logits, strict=True)
            ],
        }
        (directory / TEACHER_DIR).mkdir(parents=True, exist_ok=True)
        (directory / TEACHER_DIR / SOFT_LABELS_FILE).write_text(json.dumps(record))
        return targets

    def _cached(self, run: TrainingRun, train_rows: int) -> tuple[TeacherTargets, list[int]] | None:
        parent = run.resumed_from
        assert parent is not None
        try:
            record = json.loads((selectors.run_dir(parent) / TEACHER_DIR / SOFT_LABELS_FILE).read_text())
        except (OSError, ValueError):
            return None
        if record.get("teacher_run") != self.run.pk or len(record.get("train_logits") or []) != train_rows:
            return None
        ids = [int(row["item_id"]) for row in record["unlabelled"]]
        texts = selectors.item_texts(ids)
        if len(texts) != len(ids):
            return None
        width = len(self.predictor.labels)
        targets = TeacherTargets(
            train_logits=np.array(record["train_logits"], dtype=np.float32),
            unlabelled_texts=[texts[item_id] for item_id in ids],
            unlabelled_logits=np.array([row["logits"] for row in record["unlabelled"]], dtype=np.float32).reshape(
                -1, width
            ),
        )
        return targets, ids

    def summary(self, spec: TrainingSpec, targets: TeacherTargets) -> dict[str, Any]:
        labels = self.predictor.labels
        return {
            "teacher_run": self.run.pk,
            "temperature": spec.distill_temperature,
            "alpha": spec.distill_alpha,
            "rows": {"train": len(targets.train_logits), "unlabelled": len(targets.unlabelled_texts)},
            "labels": labels,
        }

    def compare(self, recipe: Recipe, test: list[dict[str, Any]], labels: list[str]) -> dict[str, Any]:
        """Speed and test figures of student and teacher on the test split, measured side by side here."""
        predictor, batch_size = self.predictor, recipe.spec.batch_size * 2
        index = {label: position for position, label in enumerate(labels)}
        return teacher_comparison(
            student=Timed(recipe.model, recipe.tokenizer, recipe.spec.max_length, batch_size),
            teacher=Timed(predictor.model, predictor.tokenizer, predictor.max_length, batch_size),
            texts=[row["text"] for row in test],
            label_ids=np.array([index[row["label"]] for row in test], dtype=int),
            labels=labels,
            device=recipe.runtime.device,
        )

    def sizes(self, recipe: Recipe, artifact: Path) -> dict[str, Any]:
        registry = selectors.model_registry()
        return {
            "sizes": {
                "student": {
                    "parameters": inference_parameters(recipe.model),
                    "weights_bytes": inference_weights_bytes(artifact, registry=registry),
                    "layers": int(getattr(hf_model(recipe.model).config, "num_hidden_layers", 0) or 0),
                },
                "teacher": {
                    "parameters": inference_parameters(self.predictor.model),
                    "weights_bytes": inference_weights_bytes(self.directory, registry=registry),
                    "layers": int(getattr(hf_model(self.predictor.model).config, "num_hidden_layers", 0) or 0),
                },
            }
        }
