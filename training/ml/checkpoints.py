"""Training checkpoints that describe themselves and load without unpickling anything.

A checkpoint is a folder `step-000120/` holding:
  trainable.safetensors   every trainable tensor (adapter weights, the saved head, or the unfrozen layers)
  optimizer.safetensors   the optimizer's tensors (AdamW moments and step counts), keyed "<param index>.<name>"
  rng.safetensors         the torch CPU/CUDA random states, so dropout continues as if never interrupted
  state.json              step, epoch, position in the epoch, best metric, the spec, the trainable names,
                          the optimizer's param groups and the scheduler's state (all plain numbers)
It is written into a hidden staging folder and renamed into place, state.json last, so a crash never leaves
a checkpoint that looks complete but is not. Only tensors and JSON are stored: loading cannot run code.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

CHECKPOINT_PATTERN = re.compile(r"^step-(\d+)$")
BEST_DIR = "best"
TRAINABLE_FILE = "trainable.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
RNG_FILE = "rng.safetensors"
STATE_FILE = "state.json"
KEEP_CHECKPOINTS = 2

ERROR_MISMATCH = "checkpoint {path} was trained with a different {what}; it cannot be resumed by this run"
ERROR_MISSING_TENSORS = "checkpoint {path} lacks tensors for: {names}"


class CheckpointError(ValueError):
    """A checkpoint that does not belong to this run."""


@dataclass
class TrainState:
    """Where training stands; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0


def checkpoint_due(step: int, *, every: int, total_steps: int, last_in_epoch: bool) -> bool:
    """The recipes' schedule: every `every` steps and at the last step, or at each epoch's end when `every` is 0."""
    return (step % every == 0 or step == total_steps) if every else last_in_epoch


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def list_checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoints (those with a state.json), oldest first."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = CHECKPOINT_PATTERN.match(path.name)
        if match and (path / STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def latest_checkpoint(directory: Path) -> Path | None:
    checkpoints = list_checkpoints(directory)
    return checkpoints[-1] if checkpoints else None


def _write_atomically(target: Path, write: Any) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        write(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _trainable_tensors(params: Mapping[str, nn.Parameter]) -> dict[str, torch.Tensor]:
    return {name: param.detach().to("cpu").contiguous() for name, param in params.items()}


def optimizer_to_flat(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state_dict into tensors (for safetensors) and plain values (for JSON)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{name}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_flat(tensors: Mapping[str, torch.Tensor], plain: Mapping[str, Any]) -> dict[str, Any]:
    """The state_dict `optimizer_to_flat` split up, ready for `optimizer.load_state_dict`."""
    state: dict[int, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = tensor
    for index, values in plain["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    groups = []
    for group in plain["param_groups"]:
        group = dict(group)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    return {"state": state, "param_groups": groups}


def _rng_tensors() -> dict[str, torch.Tensor]:
    tensors = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, rng in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{index}"] = rng
    return tensors


def save_checkpoint(
    directory: Path,
    *,
    state: TrainState,
    spec: Mapping[str, Any],
    params: Mapping[str, nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    keep: int,
) -> Path:
    """Write the checkpoint of `state.step` and delete all but the `keep` newest."""
    target = directory / checkpoint_name(state.step)
    optimizer_tensors, optimizer_plain = optimizer_to_flat(optimizer)

    def write(staging: Path) -> None:
        save_file(_trainable_tensors(params), staging / TRAINABLE_FILE)
        save_file(optimizer_tensors, staging / OPTIMIZER_FILE)
        save_file(_rng_tensors(), staging / RNG_FILE)
        payload = {
            "state": asdict(state),
            "spec": dict(spec),
            "trainable": list(params),
            "optimizer": optimizer_plain,
            "scheduler": scheduler.state_dict(),
        }
        (staging / STATE_FILE).write_text(json.dumps(payload, indent=2))

    _write_atomically(target, write)
    for old in list_checkpoints(directory)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def load_checkpoint(
    path: Path,
    *,
    spec: Mapping[str, Any],
    params: Mapping[str, nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> TrainState:
    """Restore weights, optimizer, scheduler and random state in place; return where training stood."""
    payload = json.loads((path / STATE_FILE).read_text())
    if payload["spec"] != dict(spec):
        raise CheckpointError(ERROR_MISMATCH.format(path=path, what="spec"))
    if payload["trainable"] != list(params):
        raise CheckpointError(ERROR_MISMATCH.format(path=path, what="set of trainable parameters"))
    load_trainable(path / TRAINABLE_FILE, params)
    optimizer.load_state_dict(optimizer_from_flat(load_file(path / OPTIMIZER_FILE), payload["optimizer"]))
    scheduler.load_state_dict(payload["scheduler"])
    rng = load_file(path / RNG_FILE)
    torch.set_rng_state(rng["cpu"])
    cuda_states = [rng[f"cuda.{i}"] for i in range(len(rng) - 1)]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    return TrainState(**payload["state"])


def save_trainable(path: Path, params: Mapping[str, nn.Parameter]) -> None:
    """The trainable tensors alone (the best weights seen so far), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    save_file(_trainable_tensors(params), staging)
    staging.replace(path)


@torch.no_grad()
def load_trainable(path: Path, params: Mapping[str, nn.Parameter]) -> None:
    tensors = load_file(path)
    missing = [name for name in params if name not in tensors]
    if missing:
        raise CheckpointError(ERROR_MISSING_TENSORS.format(path=path, names=", ".join(missing[:5])))
    for name, param in params.items():
        param.copy_(tensors[name].to(param.device, param.dtype))
