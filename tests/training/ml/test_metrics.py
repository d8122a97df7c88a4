"""Evaluation figures and baselines on hand-checked inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.ml.metrics import (
    MAX_LOG_PERPLEXITY,
    classification_metrics,
    expected_calibration_error,
    generation_metrics,
    logistic_regression_baseline,
    majority_baseline,
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


def test_baselines():
    majority = majority_baseline([1, 1, 1, 0], [0, 1, 1, 2], LABELS)
    assert majority["accuracy"] == 0.5
    assert majority["confusion_matrix"]["matrix"][0] == [0, 1, 0]

    rng = np.random.default_rng(0)
    centres = np.eye(3) * 4
    train_y = np.repeat([0, 1, 2], 20)
    test_y = np.repeat([0, 1, 2], 5)
    train_x = centres[train_y] + rng.normal(size=(60, 3))
    test_x = centres[test_y] + rng.normal(size=(15, 3))
    probe = logistic_regression_baseline(train_x, train_y, test_x, test_y, LABELS, seed=0)
    assert probe["accuracy"] >= 0.9
    only_one = logistic_regression_baseline(train_x[:5], [2] * 5, test_x, test_y, LABELS, seed=0)
    assert only_one["accuracy"] == pytest.approx(1 / 3)  # falls back to the majority class
