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
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ServiceError
from training.ml.artifacts import ArtifactError
from training.ml.checkpoints import CheckpointError
from training.ml.data import DataError
from training.ml.modeling import ModelError
from training.ml.progress import PhaseProgress
from training.ml.recipe import STATUS_CANCELLED, STATUS_EARLY_STOPPED, Outcome, Recipe
from training.ml.registry import RegistryError
from training.models import RunEvent, RunStatus, TrainingRun
from training.runs import selectors, services
from training.spec import TASK_CLASSIFICATION, TASK_SPANS, SpecError, TrainingSpec

# Failures that say what is wrong with the data, the model or the settings: shown to the owner as they are.
EXPECTED_ERRORS = (DataError, ModelError, RegistryError, CheckpointError, ArtifactError, SpecError, ServiceError)


PROGRESS_EVERY_S = 1.0


CANCEL_CHECK_EVERY_S = 1.0


MAX_TRAIN_EVENTS = 600


CHECKPOINTS = "checkpoints"


ARTIFACT = "artifact"


TRAINING = "training"


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
    data = selectors.snapshot_training_data(snapshot=run.snapshot, spec=spec)
    callbacks.progress["rows"] = data.counts()
    if data.balance:
        callbacks.progress["balance"] = data.balance
    resume = selectors.run_resume_point(run.resumed_from) if run.resumed_from is not None else None
    directory = selectors.run_dir(run)
    # The claim makes this the run's only execution, so anything already here is foreign (a database restored
    # with its ids reused) and must not be resumed from: a resume is a new run reading its parent's folder.
    shutil.rmtree(directory, ignore_errors=True)
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
    )
    callbacks.phase("loading model")
    recipe.setup()
    if resume is not None and recipe.resumed_from is not None:
        callbacks.progress["resumed_from_step"] = recipe.state.step
        services.log_event(
            run=run,
            message=f"Resumed from checkpoint step {recipe.state.step} of run {resume.run.pk}",
            step=recipe.state.step,
        )
    callbacks.phase(TRAINING, total_steps=recipe.total_steps)
    outcome = recipe.train()
    metrics: dict[str, Any] = {"outcome": _outcome(outcome), "rows": data.counts()}
    progress = {**callbacks.progress, "step": outcome.step, "total_steps": outcome.total_steps, "eta_s": 0}

    if outcome.status == STATUS_CANCELLED:
        artifact = None
        if outcome.step:
            callbacks.phase("saving")
            artifact = recipe.save(directory / ARTIFACT, snapshot_hash=run.snapshot_hash, metrics={})
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
    callbacks.phase("saving")
    artifact = recipe.save(directory / ARTIFACT, snapshot_hash=run.snapshot_hash, metrics=metrics.get("test", {}))
    how = "Stopped early" if outcome.status == STATUS_EARLY_STOPPED else "Finished"
    return RunResult(
        status=RunStatus.SUCCEEDED,
        metrics=metrics,
        progress={**progress, "phase": "done"},
        artifact_dir=artifact,
        message=f"{how} at step {outcome.step}: {_summary(run.task, metrics.get('test', {}))}",
    )
