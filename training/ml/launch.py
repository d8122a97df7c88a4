"""Run one fine-tuning from files: the entry point for several GPUs (or a training run outside the worker).

    python -m training.ml.launch --spec spec.json --data rows.jsonl --out runs/7             # one device
    torchrun --nproc_per_node 4 -m training.ml.launch --spec spec.json --data rows.jsonl --out runs/7
    accelerate launch --num_processes 4 -m training.ml.launch --spec spec.json --data rows.jsonl --out runs/7

`spec.json` is a TrainingSpec as JSON; `rows.jsonl` has one row per line with "split" set to train, validation
or test. Under --out: checkpoints/ (running again resumes from the newest), events.jsonl (progress and
validation events, one JSON object a line), result.json, and artifact/ unless cancelled. Creating the file
--out/CANCEL stops training at the next step, keeping a checkpoint. Rank 0 writes all of it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from training.ml.data import DataError
from training.ml.recipe import STATUS_CANCELLED, Recipe
from training.ml.registry import ModelRegistry
from training.spec import TrainingSpec

ARTIFACT_DIR = "artifact"
CANCEL_FILE = "CANCEL"
EVENTS_FILE = "events.jsonl"
RESULT_FILE = "result.json"
SPLITS = ("train", "validation", "test")

ERROR_BAD_LINE = "{path}:{line}: {problem}"


def read_rows(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Rows by split; a line that is not a JSON object with a known split is reported with its line number."""
    rows: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(ERROR_BAD_LINE.format(path=path, line=number, problem=error.msg)) from error
            split = row.get("split") if isinstance(row, dict) else None
            if split not in rows:
                problem = f"'split' must be one of {', '.join(SPLITS)}"
                raise DataError(ERROR_BAD_LINE.format(path=path, line=number, problem=problem))
            rows[split].append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--labels", help="comma-separated label set in id order (default: the training labels)")
    parser.add_argument("--snapshot-hash", default="")
    parser.add_argument("--model-cache", type=Path, help="where converted base models live (LABELLOOP_MODEL_CACHE)")
    parser.add_argument("--baselines", action="store_true", help="also evaluate the baselines on the test split")
    args = parser.parse_args(argv)

    spec = TrainingSpec.from_dict(json.loads(args.spec.read_text()))
    rows = read_rows(args.data)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    events = out / EVENTS_FILE

    def log(kind: str) -> Any:
        def write(figures: dict[str, Any]) -> None:
            with events.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"kind": kind, **figures}) + "\n")

        return write

    recipe = Recipe(
        spec,
        train=rows["train"],
        validation=rows["validation"],
        labels=args.labels.split(",") if args.labels else None,
        checkpoint_dir=out / "checkpoints",
        registry=ModelRegistry(cache_dir=args.model_cache),
        should_stop=(out / CANCEL_FILE).exists,
        on_progress=log("train"),
        on_eval=log("eval"),
    )
    recipe.setup()
    outcome = recipe.train()
    if recipe.runtime.is_main:
        result: dict[str, Any] = {"outcome": asdict(outcome), "world_size": recipe.runtime.world_size}
        if outcome.status != STATUS_CANCELLED:
            metrics = recipe.evaluate(rows["test"], baselines=args.baselines) if rows["test"] else {}
            recipe.save(out / ARTIFACT_DIR, snapshot_hash=args.snapshot_hash, metrics=metrics)
            result["metrics"] = metrics
        (out / RESULT_FILE).write_text(json.dumps(result, indent=2))
    if recipe.runtime.distributed:
        # train() ended on the same step everywhere and no collective follows, so each process may leave as
        # soon as its own work is written. It leaves without tearing the gloo process group down: that
        # destructor joins threads while holding the GIL and can deadlock at exit (pytorch/pytorch#56297).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
