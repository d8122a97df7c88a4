"""Evaluation figures on hand-checked inputs, their bootstrap intervals, and the verdict against baselines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.ml.metrics import (
    MAX_LOG_PERPLEXITY,
    MIN_TEST_ITEMS,
    VERDICT_BETTER,
    VERDICT_NOT_BETTER,
    VERDICT_TOO_SMALL,
    bleu_from_statistics,
    bleu_statistics,
    bootstrap_intervals,
    classification_metrics,
    classification_statistics,
    comparison_verdict,
    expected_calibration_error,
    generation_metrics,
    generation_statistics,
    paired_difference,
    perplexity,
)

LABELS = ["cat", "dog", "fish"]


def test_classification_metrics_by_hand():
    y_true = [0, 0, 1, 1, 2]
    probabilities = np.array(
        [[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.3, 0.6, 0.1], [0.5, 0.1, 0.4]]
    )  # predicts 0, 1, 1, 1, 0
    metrics = classification_metrics(y_true, probabilities, LABELS, loss=0.5)
    assert metrics["n"] == 5 and metrics["loss"] == 0.5
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["per_class"]["cat"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert metrics["per_class"]["dog"]["precision"] == pytest.approx(2 / 3)
    assert metrics["per_class"]["dog"]["recall"] == 1.0
    assert metrics["per_class"]["fish"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert metrics["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert metrics["confusion_matrix"] == {"labels": LABELS, "matrix": [[1, 1, 0], [0, 2, 0], [1, 0, 0]]}
    json.dumps(metrics)  # stored as is in a JSONField


def test_expected_calibration_error():
    # Perfectly calibrated: 80% confident and 80% right.
    assert expected_calibration_error(np.full(10, 0.8), np.array([1] * 8 + [0] * 2)) == pytest.approx(0.0)
    # Always 90% confident, right half the time: gap 0.4.
    assert expected_calibration_error(np.full(4, 0.9), np.array([1, 0, 1, 0])) == pytest.approx(0.4)
    # Two bins, each half of the examples: |0.95 - 1| and |0.55 - 0| weighted equally.
    confidences = np.array([0.95, 0.95, 0.55, 0.55])
    assert expected_calibration_error(confidences, np.array([1, 1, 0, 0])) == pytest.approx((0.05 + 0.55) / 2)
    assert expected_calibration_error(np.array([]), np.array([])) == 0.0


def test_generation_metrics():
    exact = generation_metrics(["the sky is blue", "grass is green"], ["the sky is blue", "grass is green"], loss=1.0)
    assert exact["rouge_l"] == pytest.approx(1.0)
    assert exact["bleu"] == pytest.approx(100.0)
    assert exact["perplexity"] == pytest.approx(np.e)
    wrong = generation_metrics(["no idea"], ["the sky is blue"])
    assert wrong["rouge_l"] == 0.0 and wrong["bleu"] < 1.0 and "perplexity" not in wrong
    half = generation_metrics(["the sky"], ["the sky is blue"])
    assert half["rouge_l"] == pytest.approx(2 * (1.0 * 0.5) / 1.5)
    assert perplexity(1e6) == pytest.approx(np.exp(MAX_LOG_PERPLEXITY))
    json.dumps(perplexity(1e6))


def noisy_predictions(n: int, accuracy: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 3, size=n)
    wrong = rng.random(n) > accuracy
    y_pred = np.where(wrong, (y_true + rng.integers(1, 3, size=n)) % 3, y_true)
    return y_true, y_pred


def test_resampling_statistics_at_full_weight_equal_the_point_figures():
    y_true, y_pred = noisy_predictions(50, 0.7, seed=1)
    y_pred[y_pred == 2] = 0  # a label never predicted: its F1 counts as 0 in the macro mean, as in sklearn
    metrics = classification_metrics(y_true, np.eye(3)[y_pred], LABELS)
    statistics = classification_statistics(y_true, y_pred, 3)
    ones = np.ones((1, 50))
    assert statistics["accuracy"](ones)[0] == pytest.approx(metrics["accuracy"])
    assert statistics["macro_f1"](ones)[0] == pytest.approx(metrics["macro_f1"])

    predictions = ["the sky is blue", "grass is green today", "no idea", "fire"]
    references = ["the sky is blue", "grass is green", "snow is cold", "fire is red"]
    figures = generation_metrics(predictions, references)
    counts = bleu_statistics(predictions, references)
    assert bleu_from_statistics(counts.sum(axis=0)) == pytest.approx(figures["bleu"])
    generated = generation_statistics(predictions, references)
    assert generated["bleu"](np.ones((1, 4)))[0] == pytest.approx(figures["bleu"])
    assert generated["rouge_l"](np.ones((1, 4)))[0] == pytest.approx(figures["rouge_l"])


def test_bootstrap_intervals_hold_the_estimate_shrink_with_n_and_repeat():
    widths = []
    for n in (40, 400, 4000):
        y_true, y_pred = noisy_predictions(n, 0.8, seed=n)
        metrics = classification_metrics(y_true, np.eye(3)[y_pred], LABELS)
        intervals = bootstrap_intervals(classification_statistics(y_true, y_pred, 3), n)
        for name in ("accuracy", "macro_f1"):
            low, high = intervals[name]
            assert low <= metrics[name] <= high
        widths.append(intervals["macro_f1"][1] - intervals["macro_f1"][0])
        assert intervals == bootstrap_intervals(classification_statistics(y_true, y_pred, 3), n)  # fixed seed
    assert widths[0] > widths[1] > widths[2] > 0
    # Roughly 1/sqrt(n): ten times the items, about a third of the width.
    assert widths[2] < widths[0] / 5
    assert bootstrap_intervals(classification_statistics([], [], 3), 0) == {}


def test_paired_difference_sees_a_gain_that_unpaired_intervals_would_blur():
    y_true, model_pred = noisy_predictions(300, 0.85, seed=4)
    baseline_pred = model_pred.copy()
    # The baseline gets 15 of the model's right answers wrong, and nothing else differs.
    right = np.flatnonzero(model_pred == y_true)[:15]
    baseline_pred[right] = (y_true[right] + 1) % 3
    model = classification_statistics(y_true, model_pred, 3)["accuracy"]
    baseline = classification_statistics(y_true, baseline_pred, 3)["accuracy"]
    low, high = paired_difference(model, baseline, 300)
    assert 0 < low <= 15 / 300 <= high
    unpaired = bootstrap_intervals({"model": model, "baseline": baseline}, 300)
    assert unpaired["model"][0] < unpaired["baseline"][1]  # separately, the intervals overlap
    same = paired_difference(model, model, 300)
    assert same == [0.0, 0.0]


def verdict(**changes):
    figures = dict(
        metric="macro_f1",
        model_value=0.90,
        best_baseline="tfidf_logreg",
        best_value=0.85,
        difference_interval=[0.02, 0.08],
        n=500,
        smallest_label_count=100,
        majority_value=0.45,
    )
    return comparison_verdict(**{**figures, **changes})


def test_verdict_on_constructed_cases():
    better = verdict()
    assert better["verdict"] == VERDICT_BETTER
    assert better["difference"] == pytest.approx(0.05) and better["difference_interval"] == [0.02, 0.08]
    assert better["message"].startswith("Better than the best baseline (tfidf logreg)")

    assert verdict(difference_interval=[-0.01, 0.03])["verdict"] == VERDICT_NOT_BETTER  # tight around 0
    worse = verdict(model_value=0.80, difference_interval=[-0.08, -0.02])
    assert worse["verdict"] == VERDICT_NOT_BETTER and "worse than" in worse["message"]
    wide = verdict(difference_interval=[-0.06, 0.16])
    assert wide["verdict"] == VERDICT_TOO_SMALL and "spans 0" in wide["message"]

    few = verdict(n=MIN_TEST_ITEMS - 1)
    assert few["verdict"] == VERDICT_TOO_SMALL and f"{MIN_TEST_ITEMS - 1} items" in few["message"]
    rare_label = verdict(smallest_label_count=2)
    assert rare_label["verdict"] == VERDICT_TOO_SMALL and "smallest label 2" in rare_label["message"]

    nothing = verdict(model_value=0.45, best_value=0.45, difference_interval=[0.0, 0.0], n=10)
    assert nothing["verdict"] == VERDICT_NOT_BETTER
    assert nothing["message"].startswith("This model learned nothing usable")
    json.dumps(nothing)

    generation = verdict(metric="rouge_l", best_baseline="base_model", smallest_label_count=None, majority_value=None)
    assert generation["verdict"] == VERDICT_BETTER and "ROUGE-L" in generation["message"]
