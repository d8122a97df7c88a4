"""bench/active_learning.py: its batches follow the product's queue (training.rounds), its labels-saved
arithmetic, and a seeded learning curve on blobs.

No wheel data and no encoder (the real run is in docs/benchmarks.md).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

PATH = Path(__file__).resolve().parent.parent / "bench" / "active_learning.py"
spec = importlib.util.spec_from_file_location("bench_active_learning", PATH)
al = importlib.util.module_from_spec(spec)
spec.loader.exec_module(al)

# Row 0 is sure, row 1 torn between two labels (small margin, middling entropy), row 2 spread over three
# (the highest entropy, a wider margin): entropy and margin disagree on which is most uncertain.
PROBS = np.array([[0.98, 0.01, 0.01], [0.50, 0.49, 0.01], [0.40, 0.30, 0.30]])


def test_scores_are_the_products_entropy_and_margin():
    assert al.uncertainty_scores(PROBS, "entropy") == pytest.approx(-(PROBS * np.log(PROBS)).sum(axis=1))
    assert al.uncertainty_scores(PROBS, "margin") == pytest.approx([0.03, 0.99, 0.90])  # 1 - (p1 - p2)


@pytest.mark.parametrize(("strategy", "expected"), [("entropy", [2, 1, 0]), ("margin", [1, 2, 0])])
def test_batch_puts_the_most_uncertain_first(strategy, expected):
    assert al.select_batch(PROBS, strategy=strategy, size=3, random_share=0.0, seed=0).tolist() == expected


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="strategy"):
        al.select_batch(PROBS, strategy="least-confidence", size=2, random_share=0.0, seed=0)


def test_batch_is_the_most_uncertain_without_a_random_share():
    probs = np.random.default_rng(1).dirichlet(np.ones(4), size=200)
    batch = al.select_batch(probs, strategy="entropy", size=20, random_share=0.0, seed=0)
    entropy = -(probs * np.log(probs)).sum(axis=1)
    top = np.argsort(-entropy)[:20]
    assert sorted(batch.tolist()) == sorted(top.tolist())


def test_random_share_gives_every_fifth_slot_to_a_random_item():
    probs = np.random.default_rng(1).dirichlet(np.ones(4), size=500)
    margins = np.sort(probs, axis=1)[:, -1] - np.sort(probs, axis=1)[:, -2]
    batch = al.select_batch(probs, strategy="margin", size=20, random_share=0.2, seed=3)
    assert len(batch) == len(set(batch.tolist())) == 20
    uncertain = np.delete(batch, [4, 9, 14, 19])  # the random slots
    assert np.all(np.diff(margins[uncertain]) >= 0)  # smallest margin first
    # The product reserves a random 20 % of all items for the random slots of the whole queue, so the
    # uncertain slots take the smallest margins among the other 80 %: well inside the lowest 10 % here.
    assert set(uncertain.tolist()) <= set(np.argsort(margins)[:50].tolist())


def test_random_order_is_seeded_and_covers_the_pool():
    first = al.select_batch(PROBS, strategy="random", size=3, random_share=0.0, seed=5)
    assert sorted(first.tolist()) == [0, 1, 2]
    assert al.select_batch(PROBS, strategy="random", size=3, random_share=0.0, seed=5).tolist() == first.tolist()


def test_labels_saved_to_reach_a_target():
    budgets = [20, 40, 60, 80, 100]
    random = [0.5, 0.6, 0.7, 0.75, 0.8]
    uncertain = [0.5, 0.7, 0.8, 0.85, 0.86]
    assert al.labels_saved(budgets, uncertain, random, 0.8) == (100, 60, pytest.approx(0.4))
    assert al.labels_saved(budgets, uncertain, random, 0.7) == (60, 40, pytest.approx(1 / 3))
    assert al.labels_saved(budgets, [0.5, 0.6, 0.6, 0.7, 0.7], random, 0.8) == (100, None, None)  # never reached
    assert al.labels_to_reach(budgets, uncertain, 0.9) is None


def test_seed_set_has_every_class():
    y = np.array([0] * 95 + [1] * 3 + [2] * 2)
    start = al.seed_set(y, 10, np.random.default_rng(0))
    assert len(start) == len(set(start.tolist())) == 10
    assert set(y[start].tolist()) == {0, 1, 2}


def test_learning_curve_on_blobs_is_seeded_and_stops_at_the_budget():
    X, y = make_classification(n_samples=600, n_features=8, n_informative=4, n_classes=3, random_state=0)
    pool, test = al.split_test(y, 0.25, seed=0)
    assert not set(pool.tolist()) & set(test.tolist())
    start = al.seed_set(y[pool], 10, np.random.default_rng(0))
    kwargs = dict(pool=pool, test=test, start=start, strategy="entropy", random_share=0.2, batch=10, budget=45,
                  model=LogisticRegression(max_iter=500), seed=0)  # fmt: skip
    curve = al.learning_curve(X, y, **kwargs)
    assert len(curve) == 5  # 10, 20, 30, 40, then 45: the last batch is cut to the budget
    assert all(0.0 <= f1 <= 1.0 for f1 in curve)
    assert al.learning_curve(X, y, **kwargs) == curve
