"""Django glue for span models: a snapshot's span rows → the span recipe (training/ml/spans.py) → an adapter,
entity-level test figures beside the gazetteer baseline, and the model's spans as pre-annotations of the items
still to annotate (the next round corrects them on the annotate page when the project shows pre-labels).

Imported only where training runs (the worker's run job through training/runs/runner.py, and the `span_train`
command), so torch never loads in the web process. The
test split is sacred: its items are evaluated on, never trained on and never pre-annotated.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from annotation.annotate.services import item_prelabels_set
from annotation.models import Item, ItemStatus, Project, Snapshot, SnapshotItem, Split
from annotation.tasktypes import task_kind
from core.errors import ServiceError
from training.ml.registry import ModelRegistry
from training.ml.spans import SpanRecipe, SpanTrainingConfig
from training.models import RunStatus, TrainingRun
from training.runs.selectors import model_registry, run_dir, run_resume_point
from training.spec import TrainingSpec

NOT_SPANS = "Span models train on span snapshots; this snapshot holds {task_type} values."
NO_TRAIN = "The snapshot has no train items: nothing to learn from."
MODEL_DIR = "span-models"


@dataclass
class SpanTrainingResult:
    recipe: SpanRecipe
    artifact_dir: Path
    metrics: dict[str, Any]
    rows: dict[str, int] = field(default_factory=dict)


def span_rows(*, snapshot: Snapshot) -> dict[str, list[dict[str, Any]]]:
    """The snapshot's rows per split, as the recipe reads them ({"id", "text", "spans"})."""
    task_type = snapshot.manifest.get("task_type", snapshot.project.task_type)
    if not task_kind(task_type).needs_text:
        raise ServiceError(NOT_SPANS.format(task_type=task_type))
    out: dict[str, list[dict[str, Any]]] = {split: [] for split in Split.values}
    rows = SnapshotItem.objects.filter(snapshot=snapshot).order_by("item_id")
    for item_id, text, value, split in rows.values_list("item_id", "item__text", "value", "split"):
        out[split].append({"id": item_id, "text": text, "spans": value.get("spans", [])})
    return out


def span_model_train(
    *,
    snapshot: Snapshot,
    base_model: str = "minilm",
    epochs: int = 5,
    learning_rate: float = 2e-3,
    seed: int = 0,
    registry: ModelRegistry | None = None,
    artifact_dir: Path | None = None,
) -> SpanTrainingResult:
    """Train on the train split, evaluate on the test split (model and gazetteer), save the adapter."""
    rows = span_rows(snapshot=snapshot)
    if not rows[Split.TRAIN]:
        raise ServiceError(NO_TRAIN)
    labels = tuple(snapshot.project.labels.order_by("id").values_list("name", flat=True))
    base = (registry or model_registry()).resolve(base_model)
    config = SpanTrainingConfig(
        base_model_dir=str(base), labels=labels, epochs=epochs, learning_rate=learning_rate, seed=seed
    )
    recipe = SpanRecipe(config)
    recipe.setup()
    outcome = recipe.train(rows[Split.TRAIN])
    metrics: dict[str, Any] = {"steps": outcome.steps, "final_loss": outcome.losses[-1] if outcome.losses else None}
    if rows[Split.TEST]:
        metrics["test"] = recipe.evaluate(rows[Split.TEST], train_rows=rows[Split.TRAIN])
    directory = artifact_dir or (
        Path(settings.MEDIA_ROOT) / MODEL_DIR / f"snapshot-{snapshot.pk}-{snapshot.content_hash[:12]}-seed{seed}"
    )
    metrics["snapshot_hash"] = snapshot.content_hash
    recipe.save(directory, metrics=metrics)
    return SpanTrainingResult(recipe, directory, metrics, {split: len(r) for split, r in rows.items()})


def span_prelabels_write(*, project: Project, recipe: SpanRecipe, limit: int | None = None) -> int:
    """The model's spans as pre-annotations of the items nobody has annotated yet (never a split's item)."""
    items = Item.objects.filter(project=project, status=ItemStatus.NEW, split_row__isnull=True).order_by("pk")
    chosen = list(items.values_list("pk", "text")[:limit] if limit else items.values_list("pk", "text"))
    if not chosen:
        return 0
    names = list(recipe.config.labels)
    predictions = recipe.predict([text for _, text in chosen])
    values = []
    for (item_id, text), prediction in zip(chosen, predictions, strict=True):
        value = project.value_normalise({"spans": prediction["spans"]}, names, text=text)
        values.append((value, item_id))
    return item_prelabels_set(project=project, prelabels=values)


def span_config(*, spec: TrainingSpec, labels: tuple[str, ...], base_model_dir: Path) -> SpanTrainingConfig:
    """The span recipe's settings from a run's spec (the fields the span recipe has; the rest do not apply)."""
    return SpanTrainingConfig(
        base_model_dir=str(base_model_dir),
        labels=labels,
        lora_r=spec.lora_r,
        lora_alpha=spec.lora_alpha,
        lora_dropout=spec.lora_dropout,
        learning_rate=spec.learning_rate,
        epochs=spec.epochs,
        batch_size=spec.batch_size,
        max_length=spec.max_length,
        seed=spec.seed,
        target_modules=spec.target_modules,
        save_steps=spec.save_steps,
    )


def span_run_train(run: TrainingRun, callbacks: Any) -> Any:
    """A span run in the worker (training/runs/runner.py hands span runs here): train with the run's live
    progress and cancel flag, checkpoints in the run's folder (a resumed run continues from its parent's newest
    one, as the classification runs do), evaluate on the test split beside the gazetteer, save the adapter
    (safetensors, the tokenizer and span_run.json) in the run's artifact folder. Returns the runner's RunResult."""
    from training.runs.runner import ARTIFACT, CHECKPOINTS, TRAINING, RunResult, log_resumed

    spec = TrainingSpec.from_dict(run.spec)
    callbacks.phase("preparing data")
    rows = span_rows(snapshot=run.snapshot)
    counts = {split: len(r) for split, r in rows.items()}
    callbacks.progress["rows"] = counts
    if not rows[Split.TRAIN]:
        raise ServiceError(NO_TRAIN)
    labels = tuple(run.project.labels.order_by("id").values_list("name", flat=True))
    base = model_registry().resolve(spec.base_model)
    resume = run_resume_point(run.resumed_from) if run.resumed_from is not None else None
    directory = run_dir(run)
    shutil.rmtree(directory, ignore_errors=True)  # foreign (see runner.train): a resume reads its parent's folder
    recipe = SpanRecipe(
        span_config(spec=spec, labels=labels, base_model_dir=base),
        on_progress=callbacks.on_progress,
        should_stop=callbacks.should_stop,
        checkpoint_dir=directory / CHECKPOINTS,
        resume_from=resume.directory if resume is not None else None,
    )
    callbacks.phase("loading model")
    recipe.setup()
    if resume is not None and recipe.resumed_from is not None:
        log_resumed(run, callbacks, step=recipe.state.step, parent=resume.run)
    callbacks.phase(TRAINING, total_steps=recipe.total_steps(len(rows[Split.TRAIN])))
    outcome = recipe.train(rows[Split.TRAIN])
    metrics: dict[str, Any] = {
        "outcome": {
            "status": "cancelled" if outcome.cancelled else "finished",
            "step": outcome.steps,
            "total_steps": outcome.total_steps,
            "epoch": outcome.epoch,
            "final_loss": outcome.losses[-1] if outcome.losses else None,
        },
        "rows": counts,
    }
    progress = {**callbacks.progress, "step": outcome.steps, "total_steps": outcome.total_steps, "eta_s": 0}
    artifact = directory / ARTIFACT
    if outcome.cancelled:
        saved = None
        if outcome.steps:
            callbacks.phase("saving")
            saved = recipe.save(artifact, metrics={"snapshot_hash": run.snapshot_hash})
        kept = f"the model as of step {outcome.steps} is saved" if saved else "nothing was learnt yet"
        return RunResult(
            status=RunStatus.CANCELLED,
            metrics=metrics,
            progress={**progress, "phase": "cancelled"},
            artifact_dir=saved,
            message=f"Cancelled at step {outcome.steps} of {outcome.total_steps}; {kept}",
        )
    if rows[Split.TEST]:
        callbacks.phase("evaluating")
        metrics["test"] = recipe.evaluate(rows[Split.TEST], train_rows=rows[Split.TRAIN])
    callbacks.phase("saving")
    recipe.save(artifact, metrics={**metrics.get("test", {}), "snapshot_hash": run.snapshot_hash})
    (artifact / "README.md").write_text(span_model_card(run=run, spec=spec, labels=labels, metrics=metrics))
    return RunResult(
        status=RunStatus.SUCCEEDED,
        metrics=metrics,
        progress={**progress, "phase": "done"},
        artifact_dir=artifact,
        message=f"Finished at step {outcome.steps}: {_summary(metrics.get('test'))}",
    )


def _summary(test: dict[str, Any] | None) -> str:
    if not test or test.get("f1") is None:
        return "no test split to evaluate on"
    baseline = (test.get("baselines") or {}).get("gazetteer") or {}
    text = f"entity F1 {test['f1']:.3g} on {test.get('n', 0)} test items"
    if isinstance(baseline.get("f1"), int | float):
        text += f" (gazetteer {baseline['f1']:.3g})"
    verdict = (test.get("comparison") or {}).get("message")
    return text + (f". {verdict}" if verdict else "")


def _figure(figures: dict[str, Any], key: str) -> str:
    value = figures.get(key)
    if not isinstance(value, int | float):
        return "n/a"
    interval = (figures.get("intervals") or {}).get(key)
    return f"{value:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")


def span_model_card(*, run: TrainingRun, spec: TrainingSpec, labels: tuple[str, ...], metrics: dict) -> str:
    """The artifact's README.md (replacing peft's empty template): what was trained, on what, how well beside the
    gazetteer, and how to load it."""
    test = metrics.get("test") or {}
    gazetteer = (test.get("baselines") or {}).get("gazetteer") or {}
    rows = metrics.get("rows") or {}
    lines = [
        "---",
        'library_name: "peft"',
        'pipeline_tag: "token-classification"',
        "tags:",
        '- "labelloop"',
        '- "lora"',
        "---",
        f"# Span tagger fine-tuned from {spec.base_model}",
        "",
        f"Token classification with LoRA (r {spec.lora_r}, alpha {spec.lora_alpha}) trained by Labelloop run {run.pk} "
        f"on snapshot {run.snapshot_id} (content hash {run.snapshot_hash}): {rows.get('train', 0)} train texts, "
        f"{spec.epochs} epochs at learning rate {spec.learning_rate}. Labels (BIO tags): {', '.join(labels)}.",
        "",
        "## Test figures",
        "",
        f"Entity-level (seqeval, conlleval: type and whole extent must match) on {test.get('n', 0)} test texts, "
        "95% bootstrap intervals over texts in brackets.",
        "",
        "| figure | this model | gazetteer (train split's entity strings) |",
        "|---|---|---|",
        *(
            f"| entity {key} | {_figure(test, key)} | {_figure(gazetteer, key)} |"
            for key in ("f1", "precision", "recall")
        ),
        "",
        (test.get("comparison") or {}).get("message", ""),
        "",
        "## Load it",
        "",
        "`span_run.json` holds the settings and the tag set; in Labelloop, "
        "`training.ml.spans.SpanRecipe.load(folder)` rebuilds it (`.predict(texts)` gives spans with code-point "
        "offsets). With transformers and peft alone: `AutoModelForTokenClassification.from_pretrained(base, "
        "num_labels=len(tags), id2label=..., label2id=...)`, then `PeftModel.from_pretrained(model, folder)`; "
        "tags are read per word's first sub-token.",
        "",
    ]
    return "\n".join(lines)
