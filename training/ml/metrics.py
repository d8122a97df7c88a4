"""Evaluation figures and the baselines a fine-tuned model has to beat.

Classification: accuracy, macro-F1, per-class precision/recall/F1, the confusion matrix and the expected
calibration error (how far confidence is from accuracy). Generation: loss, perplexity, ROUGE-L and BLEU.
Baselines: always predicting the majority class, and logistic regression on frozen base-model embeddings.
Pure functions over arrays and strings; every figure is a plain float so it can go into JSON as is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

ECE_BINS = 10
# exp() of a diverged loss overflows to inf, which JSON cannot hold.
MAX_LOG_PERPLEXITY = 100.0


def expected_calibration_error(confidences: ArrayLike, correct: ArrayLike, *, bins: int = ECE_BINS) -> float:
    """Weighted mean gap between confidence and accuracy over equal-width confidence bins."""
    confidences = np.asarray(confidences, dtype=float)
    correct = np.asarray(correct, dtype=float)
    if confidences.size == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidences, edges[1:-1], right=True), 0, bins - 1)
    gap = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            gap += in_bin.mean() * abs(confidences[in_bin].mean() - correct[in_bin].mean())
    return float(gap)


def classification_metrics(
    y_true: Sequence[int] | np.ndarray, probabilities: np.ndarray, labels: Sequence[str], *, loss: float | None = None
) -> dict[str, Any]:
    """Everything a run page shows about a classifier, from true label ids and predicted probabilities."""
    y_true = np.asarray(y_true, dtype=int)
    probabilities = np.asarray(probabilities, dtype=float)
    y_pred = probabilities.argmax(axis=1) if len(y_true) else np.zeros(0, dtype=int)
    ids = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    metrics: dict[str, Any] = {
        "n": len(y_true),
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "macro_f1": float(f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": {
            "labels": list(labels),
            "matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        },
        "ece": expected_calibration_error(probabilities.max(axis=1) if len(y_true) else [], y_true == y_pred),
    }
    if loss is not None:
        metrics["loss"] = float(loss)
    return metrics


def perplexity(loss: float) -> float:
    return float(math.exp(min(loss, MAX_LOG_PERPLEXITY)))


def generation_metrics(
    predictions: Sequence[str], references: Sequence[str], *, loss: float | None = None
) -> dict[str, Any]:
    """ROUGE-L F-measure (mean over examples, 0..1) and corpus BLEU (sacrebleu, 0..100) against references."""
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rouge = [scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references, strict=True)]
    metrics: dict[str, Any] = {
        "n": len(references),
        "rouge_l": float(np.mean(rouge)) if rouge else 0.0,
        "bleu": float(BLEU().corpus_score(list(predictions), [list(references)]).score) if references else 0.0,
    }
    if loss is not None:
        metrics["loss"] = float(loss)
        metrics["perplexity"] = perplexity(loss)
    return metrics


def majority_baseline(
    train_y: Sequence[int] | np.ndarray, test_y: Sequence[int], labels: Sequence[str]
) -> dict[str, Any]:
    """Predict the most frequent training label, with the training label frequencies as probabilities."""
    counts = np.bincount(np.asarray(train_y, dtype=int), minlength=len(labels)).astype(float)
    prior = counts / max(counts.sum(), 1.0)
    return classification_metrics(test_y, np.tile(prior, (len(test_y), 1)), labels)


def logistic_regression_baseline(
    train_x: np.ndarray,
    train_y: Sequence[int] | np.ndarray,
    test_x: np.ndarray,
    test_y: Sequence[int],
    labels: Sequence[str],
    *,
    seed: int,
) -> dict[str, Any]:
    """A linear probe on frozen embeddings: what the base model knows before any fine-tuning."""
    train_y = np.asarray(train_y, dtype=int)
    present = np.unique(train_y)
    if len(present) < 2:
        return majority_baseline(train_y, test_y, labels)
    probe = LogisticRegression(max_iter=1000, random_state=seed).fit(train_x, train_y)
    probabilities = np.zeros((len(test_x), len(labels)))
    probabilities[:, probe.classes_] = probe.predict_proba(test_x)
    return classification_metrics(test_y, probabilities, labels)
