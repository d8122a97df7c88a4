"""Per-slice metrics: how the model does on each value of a metadata field, beside how it does on the whole.

A slice is the test (or validation) items sharing one value of a field the project owner named: an item
metadata key (`source`, a group column) or the built-in `length_band` (the text's length in characters, banded
into short / medium / long at the tertiles of the train split's lengths). The label is never a slice: per-label
figures are the per-class table. A field with more than MAX_SLICE_VALUES values keeps the most supported ones
and pools the rest as "other".

Each slice gets its support and each metric with a 95% bootstrap interval (training/ml/metrics.py, the same
resampling as the headline figures, over the slice's items). Macro-F1 of a slice averages over the labels that
occur in it (true or predicted), not over labels it cannot hold. A slice is flagged "far below the whole" when
it has at least MIN_SLICE_SUPPORT items and the upper end of its interval for a metric is below the whole test
split's point estimate of that metric: even the most favourable reading of the slice is worse than the average.
Smaller slices are "too small to tell". Pure functions over arrays; every figure a plain float for JSON.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from training.ml.metrics import Statistic, bootstrap_intervals, classification_statistics

LENGTH_BAND = "length_band"
MAX_SLICE_FIELDS = 10
MAX_SLICE_VALUES = 20
MIN_SLICE_SUPPORT = 20
OTHER = "other"
MISSING = "(missing)"
STATUS_FLAGGED = "flagged"
STATUS_OK = "ok"
STATUS_TOO_SMALL = "too_small"
SLICE_METRICS = {"classification": ("macro_f1", "accuracy"), "generation": ("rouge_l",)}
METRIC_NAMES = {"macro_f1": "macro-F1", "accuracy": "accuracy", "rouge_l": "ROUGE-L"}
RULE = (
    "A slice is flagged when it has at least {min_support} items and the upper end of its 95% interval for a "
    "metric is below the whole split's figure. Smaller slices are too small to tell."
)

# Maps the indices of a slice's items to its statistics (one value per bootstrap resample).
SliceStatistics = Callable[[np.ndarray], Mapping[str, Statistic]]


def length_edges(train_texts: Sequence[str]) -> list[int]:
    """The character lengths at the first and second tertile of the train split: where the bands change."""
    if not train_texts:
        return []
    lengths = np.array([len(text) for text in train_texts], dtype=float)
    low, high = np.percentile(lengths, [100 / 3, 200 / 3])
    return [round(float(low)), round(float(high))]


def length_band(text: str, edges: Sequence[int]) -> str:
    """short (< low chars), medium (low-high chars) or long (> high chars), by the train split's tertiles."""
    if len(edges) != 2:
        return MISSING
    low, high = edges
    n = len(text)
    if n < low:
        return f"short (< {low} chars)"
    if n <= high:
        return f"medium ({low}-{high} chars)"
    return f"long (> {high} chars)"


def metadata_value(metadata: Mapping[str, Any] | None, field: str) -> str:
    """A metadata value as the slice's name: text as is, anything else as JSON; no value or an empty one, missing."""
    value = (metadata or {}).get(field)
    if value is None or value == "":
        return MISSING
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def cap_values(values: Sequence[str], limit: int = MAX_SLICE_VALUES) -> list[str]:
    """The values with all but the `limit` best supported (ties by name) pooled as "other"."""
    counts = Counter(values)
    if len(counts) <= limit:
        return list(values)
    kept = {value for value, _ in sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))[:limit]}
    return [value if value in kept else OTHER for value in values]


def slice_groups(
    fields: Sequence[str],
    *,
    texts: Sequence[str],
    metadata: Sequence[Mapping[str, Any] | None],
    edges: Sequence[int],
) -> dict[str, list[str]]:
    """Each field's slice name for every item (parallel to `texts`), capped at MAX_SLICE_VALUES values."""
    groups = {}
    for field in fields:
        if field == LENGTH_BAND:
            values = [length_band(text, edges) for text in texts]
        else:
            values = [metadata_value(item, field) for item in metadata]
        groups[field] = cap_values(values)
    return groups


def _point(statistic: Statistic, n: int) -> float:
    return float(statistic(np.ones((1, n)))[0])


def _slice_entry(
    value: str,
    indices: np.ndarray,
    statistics: Mapping[str, Statistic],
    *,
    whole: Mapping[str, float],
    baseline: Mapping[str, Statistic] | None,
) -> dict[str, Any]:
    n = len(indices)
    metrics = {name: _point(statistic, n) for name, statistic in statistics.items()}
    entry: dict[str, Any] = {"value": value, "support": n, "metrics": metrics}
    entry["intervals"] = bootstrap_intervals(statistics, n)
    if baseline is not None:
        entry["baseline"] = {name: _point(statistic, n) for name, statistic in baseline.items()}
    reasons = []
    if n < MIN_SLICE_SUPPORT:
        entry["status"] = STATUS_TOO_SMALL
        reasons.append(f"too small to tell: {n} item{'s' if n != 1 else ''}, fewer than {MIN_SLICE_SUPPORT}")
    else:
        for name, (low, high) in entry["intervals"].items():
            if name in whole and high < whole[name]:
                reasons.append(
                    f"{METRIC_NAMES.get(name, name)} {metrics[name]:.3f} [{low:.3f}, {high:.3f}] is below the "
                    f"whole's {whole[name]:.3f}"
                )
        entry["status"] = STATUS_FLAGGED if reasons else STATUS_OK
    entry["gaps"] = {name: metrics[name] - whole[name] for name in metrics if name in whole}
    entry["reasons"] = reasons
    return entry


def _sort_key(primary: str) -> Callable[[dict[str, Any]], tuple[int, float, str]]:
    def key(entry: dict[str, Any]) -> tuple[int, float, str]:
        return (entry["status"] == STATUS_TOO_SMALL, entry["metrics"][primary], entry["value"])

    return key


def slice_report(
    groups: Mapping[str, Sequence[str]],
    *,
    statistics: SliceStatistics,
    whole: Mapping[str, float],
    primary: str,
    baseline_statistics: SliceStatistics | None = None,
    baseline_name: str | None = None,
) -> dict[str, Any]:
    """Every field's slices, worst first (too small ones last), and the worst flagged slice of them all."""
    fields: list[dict[str, Any]] = []
    worst: dict[str, Any] | None = None
    for field, values in groups.items():
        names = np.array(values, dtype=object)
        entries = []
        for value in sorted(set(values)):
            indices = np.flatnonzero(names == value)
            baseline = baseline_statistics(indices) if baseline_statistics is not None else None
            entries.append(_slice_entry(value, indices, statistics(indices), whole=whole, baseline=baseline))
        entries.sort(key=_sort_key(primary))
        fields.append({"field": field, "values": entries})
        for entry in entries:
            if entry["status"] != STATUS_FLAGGED:
                continue
            gap = entry["gaps"].get(primary, 0.0)
            if worst is None or gap < worst["gap"]:
                worst = {
                    "field": field,
                    "value": entry["value"],
                    "support": entry["support"],
                    "metric": primary,
                    "slice_value": entry["metrics"][primary],
                    "interval": entry["intervals"].get(primary),
                    "whole_value": whole.get(primary),
                    "gap": gap,
                    "baseline_value": (entry.get("baseline") or {}).get(primary),
                }
    return {
        "primary": primary,
        "metrics": list(whole),
        "whole": dict(whole),
        "min_support": MIN_SLICE_SUPPORT,
        "max_values": MAX_SLICE_VALUES,
        "rule": RULE.format(min_support=MIN_SLICE_SUPPORT),
        "baseline": baseline_name,
        "fields": fields,
        "worst": worst,
        "flagged": sum(entry["status"] == STATUS_FLAGGED for f in fields for entry in f["values"]),
    }


def classification_slice_statistics(y_true: np.ndarray, y_pred: np.ndarray) -> SliceStatistics:
    """Accuracy and macro-F1 of a slice, macro-F1 over the labels that occur in it (true or predicted)."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)

    def statistics(indices: np.ndarray) -> Mapping[str, Statistic]:
        true, pred = y_true[indices], y_pred[indices]
        present = np.union1d(true, pred)
        remap = {label: position for position, label in enumerate(present)}
        return classification_statistics(
            [remap[int(x)] for x in true], [remap[int(x)] for x in pred], max(len(present), 1)
        )

    return statistics


def classification_slices(
    groups: Mapping[str, Sequence[str]],
    *,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    whole: Mapping[str, float],
    baseline_pred: np.ndarray | None = None,
    baseline_name: str | None = None,
) -> dict[str, Any]:
    """`slice_report` of a classifier's predictions (and the best baseline's, when given)."""
    baseline = classification_slice_statistics(y_true, baseline_pred) if baseline_pred is not None else None
    return slice_report(
        groups,
        statistics=classification_slice_statistics(y_true, y_pred),
        whole={name: whole[name] for name in SLICE_METRICS["classification"]},
        primary="macro_f1",
        baseline_statistics=baseline,
        baseline_name=baseline_name if baseline is not None else None,
    )


def mean_slice_statistics(name: str, scores: np.ndarray) -> SliceStatistics:
    """The mean of a per-item score (ROUGE-L) over a slice."""
    scores = np.asarray(scores, dtype=float)

    def statistics(indices: np.ndarray) -> Mapping[str, Statistic]:
        part = scores[indices]
        return {name: lambda weights: (weights @ part) / weights.sum(axis=1)}

    return statistics


def generation_slices(
    groups: Mapping[str, Sequence[str]],
    *,
    rouge: np.ndarray,
    whole: Mapping[str, float],
    baseline_rouge: np.ndarray | None = None,
    baseline_name: str | None = None,
) -> dict[str, Any]:
    """`slice_report` of per-response ROUGE-L (the loss is summed over tokens of a batch, not kept per item)."""
    baseline = mean_slice_statistics("rouge_l", baseline_rouge) if baseline_rouge is not None else None
    return slice_report(
        groups,
        statistics=mean_slice_statistics("rouge_l", rouge),
        whole={"rouge_l": whole["rouge_l"]},
        primary="rouge_l",
        baseline_statistics=baseline,
        baseline_name=baseline_name if baseline is not None else None,
    )
