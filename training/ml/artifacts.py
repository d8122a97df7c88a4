"""A trained model as a self-describing folder, and rebuilding it for inference without the database.

    adapter_model.safetensors + adapter_config.json   (LoRA / IA3: PEFT's own format; the head is inside)
    model.safetensors + config.json                   (full fine-tuning: the whole model)
    tokenizer.json, tokenizer_config.json, ...        (the tokenizer as trained, chat template included)
    run.json                                          (spec, snapshot hash, labels, metrics, library versions)
    README.md                                         (a model card for people)

Loading reads safetensors and JSON only: nothing in an artifact is unpickled, so a folder from elsewhere
cannot run code. The folder is written beside its final place and renamed in, so it is complete or absent.
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from peft import PeftModel
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedTokenizerBase,
)

from training.ml.modeling import hf_model, load_base_model, parameter_counts
from training.ml.registry import ModelRegistry, RegistryError
from training.spec import TASK_CLASSIFICATION, TrainingSpec

ARTIFACT_FORMAT = 1
RUN_FILE = "run.json"
CARD_FILE = "README.md"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
MODEL_WEIGHTS = "model.safetensors"
LIBRARIES = ("torch", "transformers", "peft", "tokenizers", "safetensors", "accelerate")

ERROR_NOT_ARTIFACT = "{path} is not a Labelloop model folder: {file} is missing"
ERROR_FORMAT = "{path} has artifact format {found}; this version reads format {expected}"


class ArtifactError(ValueError):
    """A folder that is not a loadable model artifact."""


@dataclass(frozen=True)
class LoadedModel:
    model: nn.Module
    tokenizer: PreTrainedTokenizerBase
    info: dict[str, Any]


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "absent"
    return versions


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model


def save_artifact(
    directory: Path,
    *,
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    spec: TrainingSpec,
    snapshot_hash: str,
    labels: Sequence[str],
    metrics: Mapping[str, Any],
    base_model_dir: Path,
) -> Path:
    """Write the artifact folder (replacing an older one at the same place) and return its path."""
    model = _unwrap(model)
    info = {
        "format": ARTIFACT_FORMAT,
        "task": spec.task,
        "method": spec.method,
        "spec": spec.to_dict(),
        "snapshot_hash": snapshot_hash,
        "labels": list(labels),
        "label2id": {label: index for index, label in enumerate(labels)},
        "base_model": {"name": spec.base_model, "path": str(base_model_dir)},
        "parameters": parameter_counts(model),
        "metrics": dict(metrics),
        "versions": library_versions(),
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        hf_model(model).save_pretrained(str(staging), safe_serialization=True)
        tokenizer.save_pretrained(staging)
        (staging / RUN_FILE).write_text(json.dumps(info, indent=2, sort_keys=True))
        (staging / CARD_FILE).write_text(model_card(info))
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def model_card(info: Mapping[str, Any]) -> str:
    """A short README: what the model is, what it was trained on, how well it did, how to load it."""
    spec = info["spec"]
    lines = [
        f"# {info['task']} model fine-tuned from {info['base_model']['name']}",
        "",
        f"- Method: {info['method']} ({info['parameters']['trainable']:,} of {info['parameters']['total']:,} "
        "parameters trained)",
        f"- Training data: Labelloop snapshot `{info['snapshot_hash']}`",
        f"- Epochs {spec['epochs']}, learning rate {spec['learning_rate']}, batch {spec['batch_size']} × "
        f"{spec['grad_accum']}, max length {spec['max_length']}, seed {spec['seed']}",
    ]
    if info["labels"]:
        lines.append(f"- Labels: {', '.join(info['labels'])}")
    figures = {k: v for k, v in info["metrics"].items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if figures:
        lines += ["", "## Test metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {name} | {value:.4g} |" for name, value in sorted(figures.items())]
    lines += [
        "",
        "## Loading",
        "",
        "```python",
        "from training.ml.predict import Predictor",
        "predictor = Predictor.load(path_to_this_folder)",
        "```",
        "",
        "Versions: " + ", ".join(f"{name} {ver}" for name, ver in sorted(info["versions"].items())),
        "",
    ]
    return "\n".join(lines)


def read_run_info(directory: Path) -> dict[str, Any]:
    path = Path(directory) / RUN_FILE
    if not path.is_file():
        raise ArtifactError(ERROR_NOT_ARTIFACT.format(path=directory, file=RUN_FILE))
    info = json.loads(path.read_text())
    if info.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(ERROR_FORMAT.format(path=directory, found=info.get("format"), expected=ARTIFACT_FORMAT))
    return info


def _base_model_dir(info: Mapping[str, Any], registry: ModelRegistry) -> Path:
    """The base model by its registered name; the recorded path when the name no longer resolves here."""
    try:
        return registry.resolve(info["base_model"]["name"])
    except RegistryError:
        recorded = Path(info["base_model"]["path"])
        if (recorded / "config.json").is_file():
            return recorded
        raise


def load_for_inference(directory: Path, *, registry: ModelRegistry | None = None) -> LoadedModel:
    """Base model + adapter (or the full model) from safetensors, the saved tokenizer, and run.json. No pickle."""
    directory = Path(directory)
    info = read_run_info(directory)
    spec = TrainingSpec.from_dict(info["spec"])
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    model: nn.Module
    if spec.uses_adapter:
        for required in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
            if not (directory / required).is_file():
                raise ArtifactError(ERROR_NOT_ARTIFACT.format(path=directory, file=required))
        base, _ = load_base_model(
            _base_model_dir(info, registry or ModelRegistry()),
            task=spec.task,
            label2id=info["label2id"] or None,
            pad_token_id=tokenizer.pad_token_id,
        )
        model = PeftModel.from_pretrained(base, directory, is_trainable=False)
    else:
        if not (directory / MODEL_WEIGHTS).is_file():
            raise ArtifactError(ERROR_NOT_ARTIFACT.format(path=directory, file=MODEL_WEIGHTS))
        auto = AutoModelForSequenceClassification if spec.task == TASK_CLASSIFICATION else AutoModelForCausalLM
        model = auto.from_pretrained(directory, local_files_only=True, use_safetensors=True)
    return LoadedModel(model=model.eval(), tokenizer=tokenizer, info=info)
