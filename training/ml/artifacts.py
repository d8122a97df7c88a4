"""A trained model as a self-describing folder, and rebuilding it for inference without the database.

    adapter_model.safetensors + adapter_config.json   (LoRA / IA3: PEFT's own format; the head is inside)
    config.json                                       (classifier adapters: the base config with id2label/label2id)
    model.safetensors + config.json                   (full fine-tuning: the whole model)
    tokenizer.json, tokenizer_config.json, ...        (the tokenizer as trained, chat template included)
    run.json                                          (spec, data, base model and its hash, labels, metrics, versions)
    README.md                                         (the model card, see model_card.py)

The folder is portable: adapter_config.json names the base model by the name plain transformers knows it by
(a hub id), never by a path on this machine, and run.json adds the sha256 of its weights, so plain
transformers + peft can load it elsewhere (the card shows how; a test runs that snippet without Labelloop).

Loading reads safetensors and JSON only: nothing in an artifact is unpickled, so a folder from elsewhere
cannot run code. The folder is written beside its final place and renamed in, so it is complete or absent.
Artifacts written before the base model's portable name and hash were recorded still load.
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
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

from training.ml.data import Example
from training.ml.model_card import CARD_FILE, model_card
from training.ml.modeling import hf_model, load_base_model, parameter_counts
from training.ml.registry import ModelRegistry, RegistryError
from training.spec import TASK_CLASSIFICATION, TrainingSpec

ARTIFACT_FORMAT = 1
RUN_FILE = "run.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
MODEL_WEIGHTS = "model.safetensors"
LIBRARIES = ("torch", "transformers", "peft", "tokenizers", "safetensors", "accelerate")

ERROR_NOT_ARTIFACT = "{path} is not a Labelloop model folder: {file} is missing"
ERROR_FORMAT = "{path} has artifact format {found}; this version reads format {expected}"
ERROR_BASE_CHANGED = (
    "{path} was trained on base model {name!r} with {file} of sha256 {expected}, but {folder} now holds one of "
    "sha256 {found}: the adapter would sit on other weights and predict something else"
)


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


def split_summary(examples: Sequence[Example], *, labelled: bool) -> dict[str, Any]:
    """How many examples a split has and, for a classifier, how many of each label (for the model card)."""
    summary: dict[str, Any] = {"n": len(examples)}
    if labelled:
        summary["labels"] = dict(sorted(Counter(example.target for example in examples).items()))
    return summary


def _test_split(metrics: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The test split's size (and label counts) as its evaluation saw them; nothing when it was not evaluated."""
    if not isinstance(metrics.get("n"), int):
        return {}
    summary: dict[str, Any] = {"n": metrics["n"]}
    per_class = metrics.get("per_class")
    if isinstance(per_class, Mapping):
        summary["labels"] = {label: figures["support"] for label, figures in sorted(per_class.items())}
    return {"test": summary}


def save_artifact(
    directory: Path,
    *,
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    spec: TrainingSpec,
    snapshot_hash: str,
    labels: Sequence[str],
    metrics: Mapping[str, Any],
    base_model: Mapping[str, Any],
    splits: Mapping[str, Mapping[str, Any]],
    augmentation: Mapping[str, Any] | None = None,
) -> Path:
    """Write the artifact folder (replacing an older one at the same place) and return its path.

    `base_model` is what `ModelRegistry.describe` says of it; `splits` the `split_summary` of the data trained on.
    """
    model = _unwrap(model)
    info = {
        "format": ARTIFACT_FORMAT,
        "task": spec.task,
        "method": spec.method,
        "spec": spec.to_dict(),
        "snapshot_hash": snapshot_hash,
        "augmentation": dict(augmentation) if augmentation else None,
        "splits": {**{name: dict(summary) for name, summary in splits.items()}, **_test_split(metrics)},
        "labels": list(labels),
        "label2id": {label: index for index, label in enumerate(labels)},
        "id2label": {str(index): label for index, label in enumerate(labels)},
        "base_model": dict(base_model),
        "parameters": parameter_counts(model),
        "metrics": dict(metrics),
        "versions": library_versions(),
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        saved = hf_model(model)
        with _named_portably(saved, str(base_model["portable_name"])):
            if isinstance(saved, PeftModel):
                # Nothing here resizes embeddings, and PEFT's "auto" check for that would look the base model up
                # on the hub by its portable name: a network call from a worker that has none.
                saved.save_pretrained(str(staging), safe_serialization=True, save_embedding_layers=False)
            else:
                saved.save_pretrained(str(staging), safe_serialization=True)
            if spec.uses_adapter and spec.task == TASK_CLASSIFICATION:
                # Plain transformers builds the classifier from the base model; this config gives it the labels.
                saved.config.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / RUN_FILE).write_text(json.dumps(info, indent=2, sort_keys=True))
        (staging / CARD_FILE).write_text(model_card(info))
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


@contextmanager
def _named_portably(model: nn.Module, name: str) -> Iterator[None]:
    """While saving, adapter_config.json names the base model portably, not by the folder it was loaded from.

    PEFT writes the `name_or_path` the base model was loaded with: an absolute path into this machine's
    virtualenv. (transformers 5 no longer writes it into config.json; a test checks no file but run.json does.)
    """
    configs = list(getattr(model, "peft_config", {}).values())
    before = [config.base_model_name_or_path for config in configs]
    for config in configs:
        config.base_model_name_or_path = name
    try:
        yield
    finally:
        for config, old in zip(configs, before, strict=True):
            config.base_model_name_or_path = old


def read_run_info(directory: Path) -> dict[str, Any]:
    path = Path(directory) / RUN_FILE
    if not path.is_file():
        raise ArtifactError(ERROR_NOT_ARTIFACT.format(path=directory, file=RUN_FILE))
    info = json.loads(path.read_text())
    if info.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(ERROR_FORMAT.format(path=directory, found=info.get("format"), expected=ARTIFACT_FORMAT))
    return info


def _base_model_dir(directory: Path, info: Mapping[str, Any], registry: ModelRegistry) -> Path:
    """The base model by its registered name, or the recorded folder when the name no longer resolves here.

    When the artifact recorded the base weights' sha256 (artifacts saved before that did not), a base model
    whose weights changed since is refused: an adapter on other weights would quietly predict something else.
    """
    recorded = info["base_model"]
    try:
        folder = registry.resolve(recorded["name"])
    except RegistryError:
        folder = Path(recorded["path"])
        if not (folder / "config.json").is_file():
            raise
    expected: Mapping[str, str] = recorded.get("weights_sha256") or {}
    if expected:
        found = registry.weights_sha256(folder)
        for file, sha256 in expected.items():
            if found.get(file) != sha256:
                raise ArtifactError(
                    ERROR_BASE_CHANGED.format(
                        path=directory,
                        name=recorded["name"],
                        file=file,
                        expected=sha256,
                        folder=folder,
                        found=found.get(file, "none (the file is missing)"),
                    )
                )
    return folder


def inference_weights_bytes(directory: Path, *, registry: ModelRegistry | None = None) -> int:
    """Bytes of the weights inference loads: the artifact's safetensors, plus its base model's for an adapter
    (which cannot predict without them)."""
    directory = Path(directory)
    info = read_run_info(directory)
    files = list(directory.glob("*.safetensors"))
    if TrainingSpec.from_dict(info["spec"]).uses_adapter:
        files += list(_base_model_dir(directory, info, registry or ModelRegistry()).glob("*.safetensors"))
    return sum(path.stat().st_size for path in files)


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
            _base_model_dir(directory, info, registry or ModelRegistry()),
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
