"""Evaluating a model on examples: the same code for validation, the test split, baselines and benchmarks.

Classification: probabilities → accuracy, macro-F1, per-class figures, confusion matrix, calibration, loss.
Generation: the loss per response token (prompt masked, as in training) and greedy responses scored with
ROUGE-L and BLEU against the references. On the test split every headline figure gets a 95% bootstrap interval,
and `with_baselines` adds the baselines (training/ml/baselines.py, fitted on train and chosen on validation; for
generation the caller evaluates the un-tuned base model with these same functions) and the paired-bootstrap
comparison of the model with the best of them. Given each item's slices (training/ml/slices.py), the same
predictions are scored per slice too, beside the best baseline's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from training.ml.baselines import Fitted, Texts, fit_classification_baselines
from training.ml.data import IGNORE_INDEX, Example, encode_causal_lm, make_collator, sorted_batches
from training.ml.metrics import (
    Statistic,
    bootstrap_intervals,
    classification_metrics,
    classification_statistics,
    comparison_verdict,
    generation_metrics,
    generation_statistics,
    paired_difference,
    rouge_l_scores,
)
from training.ml.modeling import embed_texts
from training.ml.predict import class_probabilities, generate_responses
from training.ml.progress import BatchCallback
from training.ml.slices import classification_slices, generation_slices
from training.spec import TASK_CAUSAL_LM, TASK_CLASSIFICATION

SAMPLE_COUNT = 5  # generated responses kept in the metrics, for a reader to judge
PROBABILITY_FLOOR = 1e-12
COMPARED = {TASK_CLASSIFICATION: "macro_f1", TASK_CAUSAL_LM: "rouge_l"}


def classification_report(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    *,
    labels: Sequence[str],
    max_length: int,
    batch_size: int,
    device: torch.device,
    bf16: bool = False,
) -> dict[str, Any]:
    """Classification metrics, with the mean negative log-likelihood of the true label as "loss"."""
    probabilities = class_probabilities(
        model,
        tokenizer,
        [e.source for e in examples],
        max_length=max_length,
        batch_size=batch_size,
        device=device,
        bf16=bf16,
    )
    return probability_report(label_ids(examples, labels), probabilities, labels)


def label_ids(examples: Sequence[Example], labels: Sequence[str]) -> np.ndarray:
    label2id = {label: index for index, label in enumerate(labels)}
    return np.array([label2id[e.target] for e in examples], dtype=int)


def probability_report(y_true: np.ndarray, probabilities: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Classification metrics from probabilities, with the mean negative log-likelihood of the true label."""
    picked = probabilities[np.arange(len(y_true)), y_true]
    loss = float(-np.log(np.clip(picked, PROBABILITY_FLOOR, 1.0)).mean()) if len(y_true) else 0.0
    return classification_metrics(y_true, probabilities, labels, loss=loss)


@torch.no_grad()
def causal_lm_loss(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    features: Sequence[dict[str, Any]],
    *,
    batch_size: int,
    device: torch.device,
    bf16: bool = False,
    on_batch: BatchCallback | None = None,
) -> float:
    """Mean loss per response token over all examples (not a mean of batch means)."""
    model.eval()
    collator = make_collator(tokenizer, task=TASK_CAUSAL_LM)
    total, tokens = 0.0, 0
    for indices in sorted_batches([len(f["input_ids"]) for f in features], batch_size):
        batch = collator([features[i] for i in indices]).to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        counted = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
        total += float(loss) * counted
        tokens += counted
        if on_batch is not None:
            on_batch(len(indices))
    return total / max(tokens, 1)


@dataclass(frozen=True)
class Scored:
    """A model's (or baseline's) test metrics, and its headline figures as statistics of resample weights."""

    metrics: dict[str, Any]
    statistics: dict[str, Statistic]
    # Per test item: "pred" (the predicted label id) or "rouge_l", for the per-slice figures (training/ml/slices.py).
    per_item: dict[str, np.ndarray] = field(default_factory=dict)


def generation_scored(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    *,
    max_length: int,
    max_new_tokens: int,
    batch_size: int,
    device: torch.device,
    bf16: bool = False,
    on_batch: BatchCallback | None = None,
) -> Scored:
    """Loss and perplexity on the references, ROUGE-L and BLEU of greedy responses, and a few samples.

    `on_batch(n)` follows both passes over the examples: 2 x len(examples) items in all.
    """
    features = encode_causal_lm(examples, tokenizer, max_length=max_length)
    loss = causal_lm_loss(
        model, tokenizer, features, batch_size=batch_size, device=device, bf16=bf16, on_batch=on_batch
    )
    responses = generate_responses(
        model,
        tokenizer,
        [e.source for e in examples],
        max_length=max_length,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        device=device,
        bf16=bf16,
        on_batch=on_batch,
    )
    references = [e.target for e in examples]
    metrics = generation_metrics(responses, references, loss=loss)
    metrics["samples"] = [
        {"prompt": e.source, "reference": e.target, "response": r}
        for e, r in zip(examples[:SAMPLE_COUNT], responses[:SAMPLE_COUNT], strict=False)
    ]
    return Scored(
        metrics, generation_statistics(responses, references), {"rouge_l": rouge_l_scores(responses, references)}
    )


def generation_report(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    *,
    max_length: int,
    max_new_tokens: int,
    batch_size: int,
    device: torch.device,
    bf16: bool = False,
) -> dict[str, Any]:
    """`generation_scored`'s metrics alone."""
    return generation_scored(
        model,
        tokenizer,
        examples,
        max_length=max_length,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        device=device,
        bf16=bf16,
    ).metrics


def with_intervals(scored: Scored, *, n: int) -> dict[str, Any]:
    """The metrics with a 95% bootstrap interval for each headline figure (fixed seed: the same every time)."""
    return {**scored.metrics, "intervals": bootstrap_intervals(scored.statistics, n)}


def classification_scored(y_true: np.ndarray, probabilities: np.ndarray, labels: Sequence[str]) -> Scored:
    predicted = probabilities.argmax(axis=1) if len(y_true) else np.zeros(0, dtype=int)
    return Scored(
        probability_report(y_true, probabilities, labels),
        classification_statistics(y_true, predicted, len(labels)),
        {"pred": predicted},
    )


def classification_test_report(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    model_dir: Path,
    *,
    train: Sequence[Example],
    validation: Sequence[Example],
    test: Sequence[Example],
    labels: Sequence[str],
    descriptions: Mapping[str, str],
    max_length: int,
    batch_size: int,
    device: torch.device,
    bf16: bool,
    seed: int,
    baselines: bool,
    on_batch: BatchCallback | None = None,
    slice_groups: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The model's test figures with intervals; with `baselines`, each baseline's and the comparison too; with
    `slice_groups` (field → each test item's slice), the figures per slice beside the best baseline's.

    The baselines are fitted on `train` and tuned on `validation` before any test text is looked at; the test
    split is only ever handed to what they return, to be predicted. `on_batch(n)` follows the model's pass over
    the test texts and, with `baselines`, the embedding of the train, validation and test texts (see
    `classification_evaluation_items`).
    """
    probabilities = class_probabilities(
        model,
        tokenizer,
        [e.source for e in test],
        max_length=max_length,
        batch_size=batch_size,
        device=device,
        bf16=bf16,
        on_batch=on_batch,
    )
    test_y = label_ids(test, labels)
    model_scored = classification_scored(test_y, probabilities, labels)
    metrics = with_intervals(model_scored, n=len(test))
    if not baselines:
        if slice_groups:
            metrics["slices"] = scored_classification_slices(slice_groups, test_y, model_scored)
        return metrics

    def embed(texts: Sequence[str]) -> np.ndarray:
        return embed_texts(model_dir, texts, max_length=max_length, device=device)

    def embed_split(texts: Sequence[str]) -> np.ndarray:  # the splits' texts count towards the progress
        return embed_texts(model_dir, texts, max_length=max_length, device=device, on_batch=on_batch)

    fitted = fit_classification_baselines(
        Texts([e.source for e in train], embed_split),
        label_ids(train, labels),
        Texts([e.source for e in validation], embed_split),
        label_ids(validation, labels),
        labels=labels,
        descriptions=descriptions,
        embed=embed,
        seed=seed,
    )
    test_texts = Texts([e.source for e in test], embed_split)
    scored = {f.name: classification_scored(test_y, f.predict(test_texts), labels) for f in fitted}
    metrics["baselines"] = {f.name: baseline_entry(f, scored[f.name], n=len(test)) for f in fitted}
    support = [int((test_y == index).sum()) for index in range(len(labels))]
    metrics["comparison"] = comparison(
        model_scored,
        scored,
        metric=COMPARED[TASK_CLASSIFICATION],
        n=len(test),
        smallest_label_count=min(support) if support else 0,
        majority_value=scored["majority"].metrics["macro_f1"],
    )
    if slice_groups:
        best = metrics["comparison"]["best_baseline"]
        metrics["slices"] = scored_classification_slices(slice_groups, test_y, model_scored, best, scored[best])
    return metrics


def classification_evaluation_items(*, train: int, validation: int, test: int, baselines: bool) -> int:
    """The items `classification_test_report` reports through `on_batch`: the model's test pass, and with
    `baselines` one embedding pass over every split (each split's texts are embedded once and kept)."""
    return test + (train + validation + test if baselines else 0)


def generation_evaluation_items(*, test: int, baselines: bool) -> int:
    """The items `generation_scored` reports (loss pass and generation pass), for the tuned and the base model."""
    return 2 * test * (2 if baselines else 1)


def scored_classification_slices(
    groups: Mapping[str, Sequence[str]],
    y_true: np.ndarray,
    model: Scored,
    baseline_name: str | None = None,
    baseline: Scored | None = None,
) -> dict[str, Any]:
    return classification_slices(
        groups,
        y_true=y_true,
        y_pred=model.per_item["pred"],
        whole=model.metrics,
        baseline_pred=baseline.per_item["pred"] if baseline is not None else None,
        baseline_name=baseline_name,
    )


def classification_validation_slices(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    groups: Mapping[str, Sequence[str]],
    *,
    labels: Sequence[str],
    max_length: int,
    batch_size: int,
    device: torch.device,
    bf16: bool = False,
) -> dict[str, Any]:
    """The per-slice figures of the model on the validation split (no baselines: they were chosen on it)."""
    probabilities = class_probabilities(
        model,
        tokenizer,
        [e.source for e in examples],
        max_length=max_length,
        batch_size=batch_size,
        device=device,
        bf16=bf16,
    )
    y_true = label_ids(examples, labels)
    return scored_classification_slices(groups, y_true, classification_scored(y_true, probabilities, labels))


def baseline_entry(fitted: Fitted, scored: Scored, *, n: int) -> dict[str, Any]:
    """A baseline's test figures with intervals, what it is and what validation chose for it."""
    entry = {
        **with_intervals(scored, n=n),
        "method": fitted.method,
        "chosen": fitted.chosen,
        **fitted.details,
    }
    if fitted.validation_macro_f1 is not None:
        entry["validation_macro_f1"] = fitted.validation_macro_f1
    return entry


def comparison(
    model: Scored,
    baselines: Mapping[str, Scored],
    *,
    metric: str,
    n: int,
    smallest_label_count: int | None = None,
    majority_value: float | None = None,
) -> dict[str, Any]:
    """The model against the baseline that scored best on `metric`, by a paired bootstrap of the difference."""
    best = max(baselines, key=lambda name: baselines[name].metrics[metric])
    interval = paired_difference(model.statistics[metric], baselines[best].statistics[metric], n) if n else [0.0, 0.0]
    return comparison_verdict(
        metric=metric,
        model_value=model.metrics[metric],
        best_baseline=best,
        best_value=baselines[best].metrics[metric],
        difference_interval=interval,
        n=n,
        smallest_label_count=smallest_label_count,
        majority_value=majority_value,
    )


def generation_test_report(
    model: Scored, *, base_model: Scored | None, n: int, slice_groups: Mapping[str, Sequence[str]] | None = None
) -> dict[str, Any]:
    """The fine-tuned model's test figures with intervals; with the un-tuned base model's, the comparison too;
    with `slice_groups`, ROUGE-L per slice (beside the base model's)."""
    metrics = with_intervals(model, n=n)
    if slice_groups:
        metrics["slices"] = generation_slices(
            slice_groups,
            rouge=model.per_item["rouge_l"],
            whole=model.metrics,
            baseline_rouge=base_model.per_item["rouge_l"] if base_model is not None else None,
            baseline_name="base_model" if base_model is not None else None,
        )
    if base_model is None:
        return metrics
    metrics["baselines"] = {
        "base_model": {
            **with_intervals(base_model, n=n),
            "method": "The base model before fine-tuning: the same prompts, greedy decoding.",
            "chosen": {},
        }
    }
    metrics["comparison"] = comparison(model, {"base_model": base_model}, metric=COMPARED[TASK_CAUSAL_LM], n=n)
    return metrics
