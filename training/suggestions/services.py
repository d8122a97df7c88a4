"""Pre-labelling before any training: start a suggestion run, run it in the worker, and apply its suggestions.

A run scores the project's unlabelled items (those still waiting for annotators, at most `max_items`) with an
untuned model, and first measures the same method on items that already have a final label, beside the training
page's baselines (training/ml/baselines.py: majority, TF-IDF + logistic regression, embedding logistic regression,
zero-shot nearest label, k-shot) fitted on the other labelled items, with 95 % bootstrap intervals. Methods:
- embedding zero-shot / k-shot: baselines.fit_zero_shot / fit_k_shot over the quality area's embedder (MiniLM);
- SmolLM2 zero-shot / few-shot: constrained choice by log-likelihood of each label name (training/ml/prelabel.py);
- SmolLM2 draft responses for instruction projects (the untuned base model's greedy answer).
Few-shot examples are approved items outside the evaluation set, recorded on the run (provenance) and never
scored. Suggestions are their own table: never annotations, decisions or snapshot rows. They reach annotators only
through `suggestion_run_apply(show_as_prelabels=True)` and the queue only through `use_for_ordering=True`.
ML is imported inside `suggestion_run_execute` (the worker): the web process never loads torch or scikit-learn.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import django_rq
import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from annotation.annotate.services import item_prelabels_clear, item_prelabels_set, item_priorities_set
from annotation.models import Item, ItemSplit, ItemStatus, Label, Project, Split
from annotation.projects.services import guideline_current, project_show_prelabels_set
from annotation.review.selectors import latest_decisions
from annotation.tasktypes import TRAIN_SPANS
from core.errors import ServiceError
from core.queues import QueuePlace, queue_place, requeue_lost
from training.models import Suggestion, SuggestionMethod, SuggestionRun, SuggestionRunStatus

QUEUE = "quality"  # short jobs beside noise scans, never behind a training run (docs/OPERATIONS.md)

# Items a run may score, by method. SmolLM2 measured 0.2 to 0.5 items a second with two labels on a busy 2-core
# CPU (bench/prelabel.py: the shared prompt is cached, each item pays its own tokens and the labels'); embeddings
# score hundreds a second on an idle machine; generation about 25 tokens a second.
MAX_ITEMS = {
    SuggestionMethod.EMBEDDING_ZERO_SHOT: 20000,
    SuggestionMethod.EMBEDDING_K_SHOT: 20000,
    SuggestionMethod.LLM_ZERO_SHOT: 1000,
    SuggestionMethod.LLM_FEW_SHOT: 1000,
    SuggestionMethod.LLM_RESPONSE: 200,
}
DEFAULT_ITEMS = {
    SuggestionMethod.EMBEDDING_ZERO_SHOT: 2000,
    SuggestionMethod.EMBEDDING_K_SHOT: 2000,
    SuggestionMethod.LLM_ZERO_SHOT: 100,
    SuggestionMethod.LLM_FEW_SHOT: 100,
    SuggestionMethod.LLM_RESPONSE: 30,
}
# Labelled items the accuracy is measured on (for SmolLM2 as long again as the items scored, at most).
MAX_EVALUATED = {
    SuggestionMethod.EMBEDDING_ZERO_SHOT: 2000,
    SuggestionMethod.EMBEDDING_K_SHOT: 2000,
    SuggestionMethod.LLM_ZERO_SHOT: 100,
    SuggestionMethod.LLM_FEW_SHOT: 100,
    SuggestionMethod.LLM_RESPONSE: 30,
}
LLM_METHODS = (SuggestionMethod.LLM_ZERO_SHOT, SuggestionMethod.LLM_FEW_SHOT, SuggestionMethod.LLM_RESPONSE)
SHOT_METHODS = (SuggestionMethod.EMBEDDING_K_SHOT, SuggestionMethod.LLM_FEW_SHOT)
CLASSIFICATION_METHODS = tuple(m for m in SuggestionMethod if m != SuggestionMethod.LLM_RESPONSE)
FEW_SHOT_PER_LABEL = 2  # examples per label in a SmolLM2 prompt (each one is paid for on every item and label)
EVAL_SHARE = 0.3  # of the labelled items, held out to measure on when the test split is too small
MIN_TEST_EVAL = 20  # test-split items enough to measure on them alone
LLM_MAX_LENGTH = 1024
RESPONSE_NEW_TOKENS = 96
RESPONSE_BATCH = 4
PROGRESS_EVERY_S = 2.0
ABANDONED_AFTER = dt.timedelta(hours=6)
WRITE_BATCH = 1000
DEFAULT_LLM = "smollm2-135m"

RUN_ACTIVE = "A suggestion run is already queued or running for this project; wait for it to finish."
BAD_METHOD = "Unknown method {method!r}: choose one of {choices}."
BAD_MAX_ITEMS = "The number of items must be a whole number from 1 to {high} for this method."
NO_LABELS = "Suggestions choose among the project's labels: add at least two labels first."
SPANS = (
    "Suggestions pick one label per item; span projects mark many spans per text, so they are not offered here. "
    "A span run's spans become pre-annotations from its run page instead."
)
MULTI_LABEL = (
    "Suggestions pick one label per item (a constrained choice), so they are offered for single-label projects "
    "only; a multi-label project would need a threshold per label that nothing here can set before training."
)
CLASSIFICATION_ONLY = "This method picks a label: it needs a classification project (use SmolLM2 draft responses)."
GENERATIVE_ONLY = "Draft responses are for instruction → response projects; this project has labels to choose from."
NEEDS_EXAMPLES = (
    "This method learns from approved items: it needs approved items of at least two labels outside the test "
    "split, and it has {found}. Label and review some items, or use a zero-shot method."
)
RUN_ABANDONED = "The worker running this job stopped answering; start a new run."
NOT_FINISHED = "Only a finished run's suggestions can be used: this one is {status}."


def job_id(run_id: int) -> str:
    return f"suggestion-run-{run_id}"


def llm_name() -> str:
    return getattr(settings, "LABELLOOP_PRELABEL_LLM", DEFAULT_LLM)


def _pool_labels(project: Project) -> set[str]:
    """The labels of approved items outside the test split (what k-shot methods may learn from): one grouped query."""
    labels = (
        latest_decisions(project=project)
        .exclude(item__split_row__split=Split.TEST)
        .order_by()
        .values_list("value__label", flat=True)
        .distinct()
    )
    return {str(label) for label in labels if label is not None}


def suggestion_blocker(*, project: Project, method: str) -> str | None:
    """Why this method cannot run on this project now, or None (checked before anything is queued)."""
    if method not in SuggestionMethod.values:
        return BAD_METHOD.format(method=method, choices=", ".join(SuggestionMethod.values))
    kind = project.task_kind
    if kind.generative:
        return None if method == SuggestionMethod.LLM_RESPONSE else CLASSIFICATION_ONLY
    if method == SuggestionMethod.LLM_RESPONSE:
        return GENERATIVE_ONLY
    if kind.training_task == TRAIN_SPANS:
        return SPANS
    if not kind.single_class:
        return MULTI_LABEL
    if Label.objects.filter(project=project).count() < 2:
        return NO_LABELS
    if method in SHOT_METHODS:
        found = _pool_labels(project)
        if len(found) < 2:
            one = f"approved items of one label ({next(iter(found))})" if found else "none"
            return NEEDS_EXAMPLES.format(found=one)
    return None


def methods_available(*, project: Project) -> list[tuple[str, str, str | None]]:
    """(method, its name, why it cannot run or None) for the page's form."""
    return [(m.value, m.label, suggestion_blocker(project=project, method=m.value)) for m in SuggestionMethod]


def suggestion_run_start(
    *, project: Project, user: User, method: str, max_items: int | None = None, seed: int = 0
) -> SuggestionRun:
    """Check the method can run, create the run's row (its provenance fixed now) and enqueue its job on commit."""
    blocker = suggestion_blocker(project=project, method=method)
    if blocker is not None:
        raise ServiceError(blocker, field="method")
    chosen = SuggestionMethod(method)
    high = MAX_ITEMS[chosen]
    count = DEFAULT_ITEMS[chosen] if max_items is None else max_items
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= high:
        raise ServiceError(BAD_MAX_ITEMS.format(high=high), field="max_items")
    now = timezone.now()
    SuggestionRun.objects.filter(
        project=project, status=SuggestionRunStatus.RUNNING, started_at__lt=now - ABANDONED_AFTER
    ).update(status=SuggestionRunStatus.FAILED, message=RUN_ABANDONED, finished_at=now)
    try:
        with transaction.atomic():
            run = SuggestionRun.objects.create(
                project=project,
                method=chosen,
                model_name=llm_name() if chosen in LLM_METHODS else _embedder_name(),
                guideline_version=guideline_current(project=project),
                params={"max_items": count, "seed": int(seed)},
                created_by=user,
                message="Waiting for a worker",
            )
            transaction.on_commit(lambda: _enqueue(run.pk))
    except IntegrityError:
        raise ServiceError(RUN_ACTIVE) from None
    return run


def _embedder_name() -> str:
    from annotation.quality.services import embedder

    return embedder()[1]


def _enqueue(run_id: int) -> None:
    from training.suggestions.jobs import suggestion_run_job

    django_rq.get_queue(QUEUE).enqueue(suggestion_run_job, run_id, job_id=job_id(run_id))


def suggestion_run_queue_place(run: SuggestionRun) -> QueuePlace | None:
    """Where a queued run stands in its queue; None once a worker took it."""
    if run.status != SuggestionRunStatus.QUEUED:
        return None
    return queue_place(QUEUE, job_id(run.pk))


def suggestion_runs_requeue_lost(*, older_than: dt.timedelta | None = None) -> list[int]:
    """Queued runs whose job is gone from Redis (flushed, or down at commit) get their job again: the sweep's part
    for suggestion runs, so a queued run never waits for a job that no longer exists."""
    age = older_than if older_than is not None else dt.timedelta(seconds=settings.LABELLOOP_RUN_STALE_AFTER_S)
    queued = SuggestionRun.objects.filter(status=SuggestionRunStatus.QUEUED, created_at__lt=timezone.now() - age)
    return requeue_lost(queued.values_list("pk", flat=True), queue=QUEUE, job_id=job_id, enqueue=_enqueue)


def suggestion_run_claim(*, run_id: int) -> SuggestionRun | None:
    """queued → running; None when another delivery of the job already took it (safe to deliver twice)."""
    if not SuggestionRun.objects.filter(pk=run_id, status=SuggestionRunStatus.QUEUED).update(
        status=SuggestionRunStatus.RUNNING, started_at=timezone.now(), progress=0.0, message="Starting"
    ):
        return None
    return SuggestionRun.objects.select_related("project", "guideline_version").get(pk=run_id)


def suggestion_run_fail(*, run: SuggestionRun, message: str) -> None:
    SuggestionRun.objects.filter(pk=run.pk, status=SuggestionRunStatus.RUNNING).update(
        status=SuggestionRunStatus.FAILED, message=message[:1000], finished_at=timezone.now(), eta_seconds=None
    )


class _Progress:
    """Writes progress and an ETA (from the pace so far) at most every PROGRESS_EVERY_S seconds."""

    def __init__(self, run: SuggestionRun, total: int) -> None:
        self.run, self.total, self.done = run, max(total, 1), 0
        self.started = self.last = time.monotonic()

    def __call__(self, n: int, what: str = "items") -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY_S and self.done < self.total:
            return
        self.last = now
        pace = (now - self.started) / max(self.done, 1)
        eta = round(pace * (self.total - self.done))
        SuggestionRun.objects.filter(pk=self.run.pk, status=SuggestionRunStatus.RUNNING).update(
            progress=round(min(self.done / self.total, 1.0), 4),
            eta_seconds=eta,
            message=f"Scored {self.done} of {self.total} {what}",
        )


Labelled = list[tuple[int, str, Any, bool]]  # (item id, text or prompt, final value, in the test split)


def _labelled(project: Project) -> Labelled:
    tests = set(ItemSplit.objects.filter(item__project=project, split=Split.TEST).values_list("item_id", flat=True))
    rows = latest_decisions(project=project).order_by("item_id").values_list("item_id", "item__text", "value")
    return [(item_id, text, value, item_id in tests) for item_id, text, value in rows]


def _split_labelled(rows: Labelled, *, cap: int, seed: int) -> tuple[Labelled, Labelled]:
    """(evaluation set, pool): the test split when it has enough items, else a seeded holdout; the pool (what
    examples and baselines learn from) never contains an evaluation item."""
    tests = [row for row in rows if row[3]]
    rng = random.Random(seed)
    if len(tests) >= MIN_TEST_EVAL:
        evaluation = tests
    else:
        shuffled = rows[:]
        rng.shuffle(shuffled)
        evaluation = shuffled[: max(1, round(len(rows) * EVAL_SHARE))] if len(rows) >= 2 else []
    if len(evaluation) > cap:
        evaluation = rng.sample(evaluation, cap)
    held = {row[0] for row in evaluation}
    pool = [row for row in rows if row[0] not in held and not row[3]]
    return sorted(evaluation), pool


def _targets(project: Project, cap: int) -> list[tuple[int, str]]:
    """Items still waiting for annotators, the ones the queue would give first first."""
    return list(
        Item.objects.filter(project=project, is_open=True, status__in=(ItemStatus.NEW, ItemStatus.IN_ANNOTATION))
        .order_by("-priority", "pk")
        .values_list("pk", "text")[:cap]
    )


def suggestion_run_execute(*, run: SuggestionRun) -> dict[str, Any]:
    """Measure on labelled items, then score the unlabelled ones and store a suggestion each. Raises ServiceError
    (or the model registry's error) for what the owner can fix; the job turns it into the run's message."""
    project = run.project
    method = SuggestionMethod(run.method)
    seed = int(run.params.get("seed", 0))
    guidelines = run.guideline_version.body if run.guideline_version else ""
    evaluation, pool = _split_labelled(_labelled(project), cap=MAX_EVALUATED[method], seed=seed)
    targets = _targets(project, int(run.params.get("max_items", DEFAULT_ITEMS[method])))
    progress = _Progress(run, len(evaluation) + len(targets))
    if method == SuggestionMethod.LLM_RESPONSE:
        summary, values = _responses(run, guidelines, evaluation, targets, progress)
        shot_ids: list[int] = []
    else:
        summary, values, shot_ids = _classify(run, method, guidelines, evaluation, pool, targets, progress, seed)
    now = timezone.now()
    with transaction.atomic():
        for start in range(0, len(values), WRITE_BATCH):
            Suggestion.objects.bulk_create(
                [
                    Suggestion(run=run, item_id=item_id, value=value, score=score, probabilities=probabilities)
                    for item_id, value, score, probabilities in values[start : start + WRITE_BATCH]
                ],
                ignore_conflicts=True,
            )
        summary["suggested"] = len(values)
        SuggestionRun.objects.filter(pk=run.pk, status=SuggestionRunStatus.RUNNING).update(
            status=SuggestionRunStatus.SUCCEEDED,
            progress=1.0,
            eta_seconds=None,
            shot_item_ids=shot_ids,
            summary=summary,
            message=f"Done: {len(values)} items have a suggestion",
            finished_at=now,
        )
    return summary


Value = tuple[int, dict[str, Any], float | None, dict[str, float] | None]


def _classify(
    run: SuggestionRun,
    method: SuggestionMethod,
    guidelines: str,
    evaluation: Labelled,
    pool: Labelled,
    targets: list[tuple[int, str]],
    progress: _Progress,
    seed: int,
) -> tuple[dict[str, Any], list[Value], list[int]]:
    from annotation.quality.services import embedder
    from training.ml import baselines, prelabel

    labels = list(Label.objects.filter(project=run.project).order_by("position", "pk").values_list("name", flat=True))
    index = {label: i for i, label in enumerate(labels)}
    pool = [row for row in pool if isinstance(row[2], dict) and row[2].get("label") in index]
    evaluation = [row for row in evaluation if isinstance(row[2], dict) and row[2].get("label") in index]
    embed, _ = embedder()
    descriptions = baselines.label_descriptions(guidelines, labels)
    pool_texts = baselines.Texts([row[1] for row in pool], embed)
    pool_y = np.array([index[row[2]["label"]] for row in pool], dtype=int)
    shot_ids: list[int] = []

    predict: Callable[[list[str], str], np.ndarray]
    if method in (SuggestionMethod.EMBEDDING_ZERO_SHOT, SuggestionMethod.EMBEDDING_K_SHOT):
        if method == SuggestionMethod.EMBEDDING_ZERO_SHOT:
            fitted = baselines.fit_zero_shot(labels, descriptions, embed)
        else:
            fitted = baselines.fit_k_shot(pool_texts, pool_y, label_count=len(labels), seed=seed)
            shot_ids = [pool[row][0] for row in fitted.examples]

        def predict(texts: list[str], what: str) -> np.ndarray:
            out = fitted.predict(baselines.Texts(texts, embed)) if texts else np.zeros((0, len(labels)))
            progress(len(texts), what)
            return out

        described = fitted.method
    else:
        shots: list[Any] = []
        if method == SuggestionMethod.LLM_FEW_SHOT:
            shots, shot_ids = _few_shots(pool, labels, seed, prelabel.Shot)
        model, tokenizer, device = _load_llm()

        shared = prelabel.instructions(labels=labels, guidelines=guidelines, shots=shots)

        def predict(texts: list[str], what: str) -> np.ndarray:
            scores = prelabel.label_log_likelihoods(
                model, tokenizer, texts, labels, shared=shared, device=device, on_item=lambda n: progress(n, what)
            )
            return prelabel.choice_probabilities(scores) if len(texts) else np.zeros((0, len(labels)))

        source = "guideline text" if guidelines.strip() else "label names only (no guidelines published)"
        described = (
            f"{run.model_name}: log-likelihood of each label name after a prompt of the {source}"
            + (f" and {len(shots)} approved examples" if shots else "")
            + "; the likeliest label wins (constrained choice, no free generation)."
        )

    summary: dict[str, Any] = {"method": described, "labels": labels, "evaluation": _evaluate(
        predict, evaluation, pool_texts, pool_y, labels, index, descriptions, embed, seed, exclude=shot_ids
    )}
    probabilities = predict([text for _, text in targets], "unlabelled items")
    values: list[Value] = []
    for (item_id, _), row in zip(targets, probabilities, strict=True):
        best = int(row.argmax())
        values.append(
            (item_id, {"label": labels[best]}, round(float(row[best]), 4),
             {label: round(float(p), 4) for label, p in zip(labels, row, strict=True)})
        )
    return summary, values, shot_ids


def _few_shots(pool: Labelled, labels: list[str], seed: int, shot: Callable[..., Any]) -> tuple[list[Any], list[int]]:
    """FEW_SHOT_PER_LABEL seeded examples per label from the pool, interleaved so no label comes last only."""
    rng = random.Random(seed)
    by_label: dict[str, list[tuple[int, str]]] = {}
    for item_id, text, value, _ in pool:
        by_label.setdefault(value["label"], []).append((item_id, text))
    picked = {label: rng.sample(rows, min(FEW_SHOT_PER_LABEL, len(rows))) for label, rows in by_label.items()}
    order: list[tuple[int, str, str]] = []
    for turn in range(FEW_SHOT_PER_LABEL):
        for label in labels:
            if turn < len(picked.get(label, [])):
                item_id, text = picked[label][turn]
                order.append((item_id, text, label))
    return [shot(text=text, label=label) for _, text, label in order], sorted(item_id for item_id, _, _ in order)


def _evaluate(
    predict: Callable[[list[str], str], np.ndarray],
    evaluation: Labelled,
    pool_texts: Any,
    pool_y: np.ndarray,
    labels: list[str],
    index: dict[str, int],
    descriptions: dict[str, str],
    embed: Callable[[Sequence[str]], np.ndarray],
    seed: int,
    *,
    exclude: list[int],
) -> dict[str, Any]:
    """The method's figures on labelled items it never saw, beside the training page's baselines fitted on the
    other labelled items (train 80 % / validation 20 % of them), all on the same items with 95 % intervals."""
    from training.ml import prelabel

    shown = set(exclude)
    rows = [row for row in evaluation if row[0] not in shown]
    y_true = np.array([index[row[2]["label"]] for row in rows], dtype=int)
    texts = [row[1] for row in rows]
    out: dict[str, Any] = {
        "items": len(rows),
        "on": "test split" if rows and all(row[3] for row in rows) else "held-out labelled items",
    }
    if not rows:
        out["note"] = "No labelled item to measure on yet: label and review some items to see its accuracy."
        return out
    out["suggestions"] = prelabel.figures(y_true, predict(texts, "labelled items"), len(labels))
    if len(set(pool_y.tolist())) < 2:
        out["baselines_note"] = "The baselines need approved items of two labels outside the measured ones."
        return out
    out["baselines"], out["baseline_pool"] = prelabel.baseline_figures(
        pool_texts.texts, pool_y, texts, y_true, labels=labels, descriptions=descriptions, embed=embed, seed=seed
    )
    return out


def _load_llm() -> tuple[Any, Any, Any]:
    """The registry's causal LM (SmolLM2 unless settings name another), untuned, in eval mode."""
    import torch

    from training.ml.modeling import load_base_model, load_tokenizer
    from training.runs.selectors import model_registry
    from training.spec import TASK_CAUSAL_LM

    folder = model_registry().resolve(llm_name())
    tokenizer = load_tokenizer(folder, task=TASK_CAUSAL_LM)
    model, _ = load_base_model(folder, task=TASK_CAUSAL_LM)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)  # type: ignore[arg-type]  # transformers types `to` for its own wrappers only
    return model.eval(), tokenizer, device


def _responses(
    run: SuggestionRun,
    guidelines: str,
    evaluation: Labelled,
    targets: list[tuple[int, str]],
    progress: _Progress,
) -> tuple[dict[str, Any], list[Value]]:
    """Instruction projects: the untuned model's greedy response as a draft, ROUGE-L against final responses."""
    from training.ml import prelabel
    from training.ml.metrics import bootstrap_intervals, generation_statistics
    from training.ml.predict import generate_responses

    model, tokenizer, device = _load_llm()

    def answer(prompts: list[str], what: str) -> list[str]:
        if not prompts:
            return []
        return generate_responses(
            model,
            tokenizer,
            [prelabel.response_prompt(p, guidelines=guidelines) for p in prompts],
            max_length=LLM_MAX_LENGTH,
            max_new_tokens=RESPONSE_NEW_TOKENS,
            batch_size=RESPONSE_BATCH,
            device=device,
            on_batch=lambda n: progress(n, what),
        )

    rows = [row for row in evaluation if isinstance(row[2], dict) and isinstance(row[2].get("response"), str)]
    evaluated: dict[str, Any] = {"items": len(rows), "on": "held-out labelled items"}
    if rows:
        drafts = answer([row[1] for row in rows], "labelled items")
        references = [row[2]["response"] for row in rows]
        statistics = generation_statistics(drafts, references)
        everyone = np.ones((1, len(rows)))
        intervals = bootstrap_intervals(statistics, len(rows))
        evaluated["suggestions"] = {"n": len(rows)} | {
            key: value
            for name, statistic in statistics.items()
            for key, value in ((name, float(statistic(everyone)[0])), (f"{name}_ci", intervals.get(name, [])))
        }
    else:
        evaluated["note"] = "No approved response to compare with yet."
    drafts = answer([text for _, text in targets], "unlabelled items")
    described = f"{run.model_name}: the untuned model's greedy response (at most {RESPONSE_NEW_TOKENS} tokens)."
    summary: dict[str, Any] = {"method": described, "evaluation": evaluated}
    summary["empty_drafts"] = sum(1 for d in drafts if not d.strip())  # nothing to suggest: no suggestion made
    made = [(item_id, {"response": d.strip()}, None, None) for (item_id, _), d in zip(targets, drafts, strict=True)]
    return summary, [row for row in made if row[1]["response"]]


def suggestion_run_apply(
    *, run: SuggestionRun, use_for_ordering: bool, show_as_prelabels: bool, user: User | None = None
) -> SuggestionRun:
    """Turn this run's two uses on or off.

    Ordering: the items it scored that still wait for annotators go first, by uncertainty (the margin between the
    two likeliest labels, with the project's random share mixed in: training/rounds/ordering.py); draft responses
    have no score and go first in item order. Off sets their priority back to 0.
    Pre-labels: its values become the pre-labels of those items where an item has none (an imported one is kept),
    and the project's "show pre-labels" switch goes on; off clears the pre-labels it wrote and turns the switch off.
    One run is in use at a time: turning one on turns that use off for the others.
    """
    if run.status != SuggestionRunStatus.SUCCEEDED:
        raise ServiceError(NOT_FINISHED.format(status=run.get_status_display().lower()))
    project = run.project
    with transaction.atomic():
        others = SuggestionRun.objects.filter(
            Q(used_for_ordering=True) | Q(shown_as_prelabels=True), project=project
        ).exclude(pk=run.pk)
        for other in others:
            if use_for_ordering and other.used_for_ordering:
                _ordering_off(other)
            if show_as_prelabels and other.shown_as_prelabels:
                _prelabels_off(other, switch=False)
        if use_for_ordering and not run.used_for_ordering:
            _ordering_on(run)
        elif not use_for_ordering and run.used_for_ordering:
            _ordering_off(run)
        if show_as_prelabels and not run.shown_as_prelabels:
            _prelabels_on(run)
        elif not show_as_prelabels and run.shown_as_prelabels:
            _prelabels_off(run, switch=True)
    run.refresh_from_db()
    return run


def _still_waiting(run: SuggestionRun) -> list[tuple[int, dict[str, Any], dict[str, float] | None, Any]]:
    return list(
        Suggestion.objects.filter(
            run=run, item__is_open=True, item__status__in=(ItemStatus.NEW, ItemStatus.IN_ANNOTATION)
        )
        .order_by("item_id")
        .values_list("item_id", "value", "probabilities", "item__prelabel")
    )


def _ordering_on(run: SuggestionRun) -> None:
    from training.rounds.ordering import margin, queue_order

    rows = _still_waiting(run)
    ids = np.array([item_id for item_id, *_ in rows], dtype=np.int64)
    scores = np.array([margin(probabilities) for _, _, probabilities, _ in rows], dtype=np.float64)
    ordered, _ = queue_order(ids, scores, float(run.project.random_share), int(run.params.get("seed", 0)))
    n = len(ordered)
    # Above every priority a round gives (at most the queue's length), so the suggested order wins while it is on.
    top = float(Item.objects.filter(project=run.project).count())
    item_priorities_set(project=run.project, priorities=((top + n - i, int(pk)) for i, pk in enumerate(ordered)))
    SuggestionRun.objects.filter(pk=run.pk).update(used_for_ordering=True)


def _ordering_off(run: SuggestionRun) -> None:
    item_priorities_set(project=run.project, priorities=((0.0, item_id) for item_id, *_ in _still_waiting(run)))
    SuggestionRun.objects.filter(pk=run.pk).update(used_for_ordering=False)


def _prelabels_on(run: SuggestionRun) -> None:
    rows = [(value, item_id) for item_id, value, _, current in _still_waiting(run) if current is None]
    item_prelabels_set(project=run.project, prelabels=rows)
    project_show_prelabels_set(project=run.project, show=True)
    SuggestionRun.objects.filter(pk=run.pk).update(shown_as_prelabels=True)


def _prelabels_off(run: SuggestionRun, *, switch: bool) -> None:
    """Clear the pre-labels this run wrote (an item whose pre-label is still this run's value)."""
    mine = [item_id for item_id, value, _, current in _still_waiting(run) if current == value]
    item_prelabels_clear(project=run.project, item_ids=mine)
    if switch:
        project_show_prelabels_set(project=run.project, show=False)
    SuggestionRun.objects.filter(pk=run.pk).update(shown_as_prelabels=False)


def suggestion_runs_abandoned_fail(*, project: Project) -> int:
    """Running runs whose worker is long gone are failed (the page calls it before showing them)."""
    now = timezone.now()
    return SuggestionRun.objects.filter(
        project=project, status=SuggestionRunStatus.RUNNING, started_at__lt=now - ABANDONED_AFTER
    ).update(status=SuggestionRunStatus.FAILED, message=RUN_ABANDONED, finished_at=now)
