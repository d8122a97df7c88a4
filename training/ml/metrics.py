"""Evaluation figures, their bootstrap confidence intervals, and the verdict of a model against its baselines.

Classification: accuracy, macro-F1, per-class precision/recall/F1, the confusion matrix and the expected
calibration error (how far confidence is from accuracy). Generation: loss, perplexity, ROUGE-L and BLEU.
Intervals: 95% percentile bootstrap over test items with a fixed seed; the headline figures are written as
statistics of per-item weights (how often each item is drawn), so one matrix product scores a thousand
resamples, and model and baseline resampled with the same weights give a paired bootstrap of their difference.
Pure functions over arrays and strings; every figure is a plain float so it can go into JSON as is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

ECE_BINS = 10
BLEU_ORDER = 4
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
# Resamples are drawn in chunks of at most this many (resample, item) cells, to bound memory on big test splits.
BOOTSTRAP_CHUNK_CELLS = 2_000_000
# Below these the comparison says the test split is too small to tell (classification: per label too).
MIN_TEST_ITEMS = 30
MIN_TEST_PER_LABEL = 5
# A difference interval that straddles 0 and is wider than this cannot tell a real gain from none.
WIDE_DIFFERENCE = 0.10
# Macro-F1 within this of the majority baseline is no better than always answering the most frequent label.
LEARNED_NOTHING_MARGIN = 1e-9
SHOWN_METRICS = {"macro_f1": "macro-F1", "rouge_l": "ROUGE-L", "accuracy": "accuracy", "bleu": "BLEU"}
VERDICT_BETTER = "better"
VERDICT_NOT_BETTER = "not_better"
VERDICT_TOO_SMALL = "too_small_to_tell"

# A statistic maps resample weights (resamples x items: how often each item was drawn) to one value per resample.
Statistic = Callable[[np.ndarray], np.ndarray]
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
    rouge = rouge_l_scores(predictions, references)
    metrics: dict[str, Any] = {
        "n": len(references),
        "rouge_l": float(np.mean(rouge)) if len(rouge) else 0.0,
        "bleu": bleu_from_statistics(bleu_statistics(predictions, references).sum(axis=0)) if references else 0.0,
    }
    if loss is not None:
        metrics["loss"] = float(loss)
        metrics["perplexity"] = perplexity(loss)
    return metrics


def rouge_l_scores(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """ROUGE-L F-measure of each prediction against its reference (0..1)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pairs = zip(predictions, references, strict=True)
    return np.array([scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in pairs], dtype=float)


def bleu_statistics(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Per item: hypothesis length, reference length, then matching and total n-grams for n = 1..4.

    Corpus BLEU is a function of these counts summed over items, which is what lets it be bootstrapped.
    """
    from sacrebleu.metrics import BLEU

    bleu = BLEU()
    rows = []
    for prediction, reference in zip(predictions, references, strict=True):
        score = bleu.sentence_score(prediction, [reference])
        rows.append([score.sys_len, score.ref_len, *score.counts, *score.totals])
    return np.array(rows, dtype=float).reshape(len(rows), 2 + 2 * BLEU_ORDER)


def bleu_from_statistics(summed: np.ndarray) -> float:
    """Corpus BLEU (sacrebleu's defaults: 13a tokens, exp smoothing; 0..100) from summed `bleu_statistics`."""
    from sacrebleu.metrics import BLEU

    counts = [int(x) for x in summed]
    correct, total = counts[2 : 2 + BLEU_ORDER], counts[2 + BLEU_ORDER :]
    return float(BLEU.compute_bleu(correct, total, counts[0], counts[1], smooth_method="exp").score)


# --- bootstrap ------------------------------------------------------------------------------------


def bootstrap_weights(
    n: int, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> Iterator[np.ndarray]:
    """Resamples of n items with replacement, as counts per item, in chunks of rows; the same for a given seed."""
    rng = np.random.default_rng(seed)
    chunk = max(1, BOOTSTRAP_CHUNK_CELLS // max(n, 1))
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        drawn = rng.integers(0, n, size=(rows, n)) + n * np.arange(rows)[:, None]
        yield np.bincount(drawn.ravel(), minlength=rows * n).reshape(rows, n).astype(float)


def bootstrap(
    statistics: Mapping[str, Statistic], n: int, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> dict[str, np.ndarray]:
    """Each statistic over the same resamples (so differences between them are paired)."""
    values: dict[str, list[np.ndarray]] = {name: [] for name in statistics}
    for weights in bootstrap_weights(n, resamples=resamples, seed=seed):
        for name, statistic in statistics.items():
            values[name].append(statistic(weights))
    return {name: np.concatenate(parts) for name, parts in values.items()}


def percentile_interval(values: np.ndarray, *, confidence: float = CONFIDENCE) -> list[float]:
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return [float(low), float(high)]


def bootstrap_intervals(
    statistics: Mapping[str, Statistic], n: int, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> dict[str, list[float]]:
    """95% percentile intervals of each statistic; none on an empty test split."""
    if n == 0:
        return {}
    drawn = bootstrap(statistics, n, resamples=resamples, seed=seed)
    return {name: percentile_interval(values) for name, values in drawn.items()}


def classification_statistics(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, label_count: int
) -> dict[str, Statistic]:
    """Accuracy and macro-F1 (over all labels, 0 for a label never true nor predicted, as sklearn counts it)."""
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    correct = (y_true == y_pred).astype(float)
    ids = np.arange(label_count)
    is_true = (y_true[:, None] == ids).astype(float)
    is_pred = (y_pred[:, None] == ids).astype(float)
    hit = is_true * is_pred

    def accuracy(weights: np.ndarray) -> np.ndarray:
        return (weights @ correct) / weights.sum(axis=1)

    def macro_f1(weights: np.ndarray) -> np.ndarray:
        tp, true, pred = weights @ hit, weights @ is_true, weights @ is_pred
        denominator = true + pred
        f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
        return f1.mean(axis=1)

    return {"accuracy": accuracy, "macro_f1": macro_f1}


def generation_statistics(predictions: Sequence[str], references: Sequence[str]) -> dict[str, Statistic]:
    """Mean ROUGE-L and corpus BLEU of the resampled items."""
    rouge = rouge_l_scores(predictions, references)
    counts = bleu_statistics(predictions, references)

    def rouge_l(weights: np.ndarray) -> np.ndarray:
        return (weights @ rouge) / weights.sum(axis=1)

    def bleu(weights: np.ndarray) -> np.ndarray:
        return np.array([bleu_from_statistics(summed) for summed in weights @ counts])

    return {"rouge_l": rouge_l, "bleu": bleu}


def paired_difference(
    model: Statistic, baseline: Statistic, n: int, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> list[float]:
    """95% interval of (model - baseline) with both scored on the same resamples of the test items."""
    drawn = bootstrap(
        {"difference": lambda weights: model(weights) - baseline(weights)}, n, resamples=resamples, seed=seed
    )
    return percentile_interval(drawn["difference"])


# --- verdict --------------------------------------------------------------------------------------


def comparison_verdict(
    *,
    metric: str,
    model_value: float,
    best_baseline: str,
    best_value: float,
    difference_interval: Sequence[float],
    n: int,
    smallest_label_count: int | None = None,
    majority_value: float | None = None,
) -> dict[str, Any]:
    """Whether the model beats its best baseline, as the run page and the model card say it.

    "better" only when the whole interval of the difference is above 0. "too_small_to_tell" when the test split
    has fewer than MIN_TEST_ITEMS items (or a label fewer than MIN_TEST_PER_LABEL), or the interval straddles 0
    and is wider than WIDE_DIFFERENCE. "not_better" otherwise, and always when a classifier's macro-F1 is no
    better than the majority class: that model learned nothing, whatever the size of the test split.
    """
    low, high = (float(x) for x in difference_interval)
    difference = float(model_value - best_value)
    shown = SHOWN_METRICS.get(metric, metric)
    name = best_baseline.replace("_", " ")
    interval = f"95% interval {low:+.3f} to {high:+.3f}"
    result = {
        "metric": metric,
        "best_baseline": best_baseline,
        "difference": difference,
        "difference_interval": [low, high],
    }
    if majority_value is not None and model_value <= majority_value + LEARNED_NOTHING_MARGIN:
        message = (
            f"This model learned nothing usable: its {shown} ({model_value:.3f}) is no better than always "
            f"predicting the most frequent label ({majority_value:.3f})."
        )
        return {**result, "verdict": VERDICT_NOT_BETTER, "message": message}
    too_few_per_label = smallest_label_count is not None and smallest_label_count < MIN_TEST_PER_LABEL
    if n < MIN_TEST_ITEMS or too_few_per_label:
        need, sizes = f"at least {MIN_TEST_ITEMS} test items", f"{n} items"
        if smallest_label_count is not None:
            need, sizes = (
                f"{need} and {MIN_TEST_PER_LABEL} per label",
                f"{sizes}, smallest label {smallest_label_count}",
            )
        message = (
            f"The test split is too small to tell whether this model beats the best baseline ({name}): "
            f"{sizes}; a comparison needs {need}."
        )
        return {**result, "verdict": VERDICT_TOO_SMALL, "message": message}
    if low > 0:
        message = f"Better than the best baseline ({name}): {shown} {difference:+.3f} ({interval})."
        return {**result, "verdict": VERDICT_BETTER, "message": message}
    if low <= 0 <= high and high - low > WIDE_DIFFERENCE:
        message = (
            f"The test split is too small to tell whether this model beats the best baseline ({name}): "
            f"{shown} {difference:+.3f}, {interval}, which spans 0."
        )
        return {**result, "verdict": VERDICT_TOO_SMALL, "message": message}
    how = "worse than" if high < 0 else "not better than"
    message = f"This model is {how} the best baseline ({name}): {shown} {difference:+.3f} ({interval})."
    return {**result, "verdict": VERDICT_NOT_BETTER, "message": message}
