"""Knowledge distillation on real SMS spam: a MiniLM LoRA teacher, and a student with fewer of its layers trained
with the teacher's soft labels, against the same student trained on the human labels alone (same size, same
labelled rows, same rate, no teacher; `--plain-epochs` gives it more epochs, e.g. as many optimizer steps as the
distilled student, which also steps over the unlabelled rows).

The messages (bench/_data.py) are shuffled with a fixed seed and split 60/20/20 as in bench/baselines.py; of the
train part, `--labelled` rows keep their labels and the rest stand in for a project's unlabelled items (the
distilled student sees their text with the teacher's soft labels; nobody sees their labels). The teacher trains on
the labelled rows. Every model is scored on the same test split with 95% bootstrap intervals, and each student's
macro-F1 against the teacher's and against the other student's by a paired bootstrap. Speed: items per second over
the test texts, the models taking turns over 3 timed passes (training/ml/distill.py, `compare_speed`).

    python bench/distill.py              # 1,200 messages, 300 labelled, 2 layers: ~40 min on 2 busy CPUs
    python bench/distill.py --n 0 --labelled 1000 --layers 3 --epochs 3
    python bench/distill.py --only-plain --plain-epochs 7   # the labels-only student alone, longer
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.baselines import splits  # noqa: E402
from training.ml.artifacts import inference_weights_bytes  # noqa: E402
from training.ml.distill import TeacherTargets, Timed, compare_speed, inference_parameters  # noqa: E402
from training.ml.evaluation import classification_scored, with_intervals  # noqa: E402
from training.ml.metrics import paired_difference  # noqa: E402
from training.ml.predict import class_logits, softmax  # noqa: E402
from training.ml.recipe import Recipe  # noqa: E402
from training.ml.registry import ModelRegistry  # noqa: E402
from training.spec import TrainingSpec  # noqa: E402

STUDENT_LEARNING_RATE = 1e-4


def figure(metrics: dict, key: str) -> str:
    low, high = metrics["intervals"][key]
    return f"{metrics[key]:.3f} [{low:.3f}, {high:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1200, help="messages before the split (0: all 4,5xx)")
    parser.add_argument("--labelled", type=int, default=300, help="train rows that keep their labels")
    parser.add_argument("--layers", type=int, default=2, help="MiniLM layers the students keep (of 6)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--student-lr", type=float, default=STUDENT_LEARNING_RATE)
    parser.add_argument("--plain-epochs", type=int, help="epochs of the labels-only student (default: --epochs)")
    parser.add_argument("--only-plain", action="store_true", help="train and score the labels-only student alone")
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    train_all, validation, test = splits(args.n or None)
    labelled, unlabelled = train_all[: args.labelled], train_all[args.labelled :]
    registry = ModelRegistry()
    base = TrainingSpec.defaults("classification")
    teacher_spec = dataclasses.replace(base, epochs=args.epochs, early_stopping_patience=0)
    student_spec = dataclasses.replace(
        TrainingSpec.defaults("classification", method="full"),
        epochs=args.epochs,
        early_stopping_patience=0,
        learning_rate=args.student_lr,
        student_layers=args.layers,
        distill_temperature=args.temperature,
        distill_alpha=args.alpha,
    )
    labels = sorted({row["label"] for row in train_all})
    texts = [row["text"] for row in test]
    y = np.array([labels.index(row["label"]) for row in test])
    cpu = torch.device("cpu")
    print(
        f"SMS spam: {len(labelled)} labelled train, {len(unlabelled)} unlabelled, {len(validation)} validation, "
        f"{len(test)} test (spam in test: {sum(r['label'] == 'spam' for r in test)}); {args.epochs} epoch(s) each; "
        f"students keep {args.layers} of MiniLM's 6 layers, full fine-tuning at {args.student_lr:g}; "
        f"T={args.temperature:g}, alpha={args.alpha:g}"
    )
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        times: dict[str, float] = {}

        def fit(name: str, spec: TrainingSpec, teacher: TeacherTargets | None = None) -> Recipe:
            recipe = Recipe(spec, train=labelled, validation=validation, labels=labels, checkpoint_dir=out / name,
                            registry=registry, teacher=teacher)
            recipe.setup()
            started = time.monotonic()
            recipe.train()
            times[name] = time.monotonic() - started
            recipe.save(out / f"{name}-artifact", snapshot_hash="0" * 64)
            return recipe

        models: dict[str, Recipe] = {}
        if not args.only_plain:
            teacher = models["teacher"] = fit("teacher", teacher_spec)
            soft = class_logits(teacher.model, teacher.tokenizer, [r["text"] for r in train_all], max_length=128,
                                batch_size=64, device=cpu)
            targets = TeacherTargets(soft[: len(labelled)], [r["text"] for r in unlabelled], soft[len(labelled) :])
            models["distilled"] = fit("distilled", student_spec, targets)
        plain_spec = dataclasses.replace(student_spec, epochs=args.plain_epochs or args.epochs)
        models["labels only"] = fit("labels only", plain_spec)
        print(f"labels-only student: {plain_spec.epochs} epoch(s), {models['labels only'].total_steps} steps"
              + (f"; distilled: {models['distilled'].total_steps} steps" if "distilled" in models else ""))
        speeds, logits = compare_speed(
            {name: Timed(r.model, r.tokenizer, 128, 64) for name, r in models.items()}, texts, device=cpu
        )
        scored = {name: classification_scored(y, softmax(logits[name]), labels) for name in models}
        print(f"load average {os.getloadavg()[0]:.1f}; test macro-F1 and accuracy with 95% bootstrap intervals")
        print(f"  {'model':12s} {'macro-F1':22s} {'accuracy':22s} {'params':>8s} {'weights':>9s} {'items/s':>8s} "
              f"{'train s':>7s}")
        for name, recipe in models.items():
            metrics = with_intervals(scored[name], n=len(test))
            size = inference_weights_bytes(out / f"{name}-artifact", registry=registry) / 1e6
            print(f"  {name:12s} {figure(metrics, 'macro_f1'):22s} {figure(metrics, 'accuracy'):22s} "
                  f"{inference_parameters(recipe.model) / 1e6:7.1f}M {size:7.1f}MB "
                  f"{speeds[name]['items_per_s']:8.0f} {times[name]:7.0f}")
        pairs = (("distilled", "teacher"), ("labels only", "teacher"), ("distilled", "labels only"))
        for a, b in [(a, b) for a, b in pairs if a in models and b in models]:
            low, high = paired_difference(scored[a].statistics["macro_f1"], scored[b].statistics["macro_f1"], len(test))
            value = scored[a].metrics["macro_f1"] - scored[b].metrics["macro_f1"]
            print(f"  macro-F1 {a} - {b}: {value:+.3f} [{low:+.3f}, {high:+.3f}] (paired bootstrap)")
        print("  speed passes (items/s): " + "; ".join(
            f"{name} {', '.join(f'{v:.0f}' for v in s['passes'])}" for name, s in speeds.items()))


if __name__ == "__main__":
    main()
