"""Batched inference: class probabilities or greedy generations, for evaluation and for a saved model.

`Predictor.load(artifact_dir)` rebuilds the model once (see artifacts.load_for_inference) and is reused for
every batch. Inputs are sorted by length before batching, so each batch pads little, and the results come
back in the caller's order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from training.ml.artifacts import LoadedModel, load_for_inference
from training.ml.data import chat_prompt_ids, sorted_batches
from training.ml.explain import IG_MAX_STEPS, IG_STEPS, explain_classification, response_logprobs
from training.ml.modeling import generative_model, hf_model
from training.ml.progress import BatchCallback
from training.spec import TASK_CLASSIFICATION

if TYPE_CHECKING:
    from training.ml.registry import ModelRegistry

ERROR_WRONG_TASK = "this model was trained for {task!r}; use {method}() instead"
ERROR_NO_LABELS = "this model has no labels (its config has no id2label): it is not a classifier"


@dataclass(frozen=True)
class Classification:
    label: str
    probabilities: dict[str, float]
    confidence: float
    uncertainty: float  # entropy of the predicted distribution, in nats


def _autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager[Any]:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)


@torch.no_grad()
def class_logits(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    max_length: int,
    batch_size: int,
    device: torch.device,
    bf16: bool = False,
    on_batch: BatchCallback | None = None,
) -> np.ndarray:
    """The classifier's logits (float32), one row per text, in the order given; `on_batch(n)` after each batch."""
    model.eval()
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    num_labels = hf_model(model).config.num_labels
    if num_labels is None:
        raise ValueError(ERROR_NO_LABELS)
    out = np.zeros((len(texts), num_labels), dtype=np.float32)
    for batch in sorted_batches([len(ids) for ids in encoded], batch_size):
        inputs = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, return_tensors="pt").to(device)
        with _autocast(device, bf16):
            logits = model(**inputs).logits
        out[batch] = logits.float().cpu().numpy()
        if on_batch is not None:
            on_batch(len(batch))
    return out


def softmax(logits: np.ndarray, *, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, in float64 (stable: the row maximum is subtracted first)."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True) if scaled.size else 0.0
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


def class_probabilities(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    max_length: int,
    batch_size: int,
    device: torch.device,
    bf16: bool = False,
    on_batch: BatchCallback | None = None,
) -> np.ndarray:
    """Softmax probabilities, one row per text, in the order given; `on_batch(n)` after each batch of n texts."""
    logits = class_logits(
        model, tokenizer, texts, max_length=max_length, batch_size=batch_size, device=device, bf16=bf16,
        on_batch=on_batch,
    )
    return softmax(logits)


@torch.no_grad()
def generate_responses(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    *,
    max_length: int,
    max_new_tokens: int,
    batch_size: int,
    device: torch.device,
    bf16: bool = False,
    on_batch: BatchCallback | None = None,
) -> list[str]:
    """Greedy responses to chat-formatted prompts (left-padded batches), in the order given; `on_batch(n)` after
    each batch of n prompts."""
    model.eval()
    encoded = [chat_prompt_ids(tokenizer, prompt)[-max_length:] for prompt in prompts]
    responses = [""] * len(prompts)
    pad_id = tokenizer.pad_token_id
    for batch in sorted_batches([len(ids) for ids in encoded], batch_size):
        width = max(len(encoded[i]) for i in batch)
        input_ids = torch.tensor([[pad_id] * (width - len(encoded[i])) + encoded[i] for i in batch], device=device)
        attention = torch.tensor(
            [[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in batch], device=device
        )
        with _autocast(device, bf16):
            # transformers types the mixin's `self` as a protocol that only a model class (not the mixin) meets.
            output = generative_model(model).generate(  # type: ignore[misc]
                input_ids=input_ids,
                attention_mask=attention,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        for row, index in enumerate(batch):
            text = tokenizer.decode(output[row, width:], skip_special_tokens=True)
            assert isinstance(text, str)  # one sequence decodes to one string
            responses[index] = text.strip()
        if on_batch is not None:
            on_batch(len(batch))
    return responses


def entropy(probabilities: np.ndarray) -> float:
    p = probabilities[probabilities > 0]
    return float(-(p * np.log(p)).sum())


class Predictor:
    """A trained model loaded once, answering batches: labels with probabilities, or generated text."""

    def __init__(self, loaded: LoadedModel, *, device: torch.device, bf16: bool) -> None:
        self.model = loaded.model.to(device).eval()
        self.tokenizer = loaded.tokenizer
        self.info = loaded.info
        self.task: str = loaded.info["spec"]["task"]
        self.labels: list[str] = list(loaded.info.get("labels") or [])
        self.max_length: int = loaded.info["spec"]["max_length"]
        self.max_new_tokens: int = loaded.info["spec"]["max_new_tokens"]
        self.device = device
        self.bf16 = bf16

    @classmethod
    def load(
        cls, artifact_dir: Path, *, registry: ModelRegistry | None = None, device: torch.device | None = None
    ) -> Predictor:
        """Rebuild the model of an artifact directory; CUDA with bf16 autocast when available, else CPU."""
        if device is None:
            device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
        bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return cls(load_for_inference(artifact_dir, registry=registry), device=device, bf16=bf16)

    def classify(self, texts: Sequence[str], *, batch_size: int = 32) -> list[Classification]:
        if self.task != TASK_CLASSIFICATION:
            raise ValueError(ERROR_WRONG_TASK.format(task=self.task, method="generate"))
        probabilities = class_probabilities(
            self.model,
            self.tokenizer,
            texts,
            max_length=self.max_length,
            batch_size=batch_size,
            device=self.device,
            bf16=self.bf16,
        )
        return [self._classification(row) for row in probabilities]

    def _classification(self, row: np.ndarray) -> Classification:
        best = int(row.argmax())
        return Classification(
            label=self.labels[best],
            probabilities={label: float(p) for label, p in zip(self.labels, row, strict=True)},
            confidence=float(row[best]),
            uncertainty=entropy(row),
        )

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int | None = None, batch_size: int = 8) -> list[str]:
        if self.task == TASK_CLASSIFICATION:
            raise ValueError(ERROR_WRONG_TASK.format(task=self.task, method="classify"))
        return generate_responses(
            self.model,
            self.tokenizer,
            prompts,
            max_length=self.max_length,
            max_new_tokens=max_new_tokens or self.max_new_tokens,
            batch_size=batch_size,
            device=self.device,
            bf16=self.bf16,
        )

    def explain(self, text: str, *, steps: int = IG_STEPS, max_steps: int = IG_MAX_STEPS) -> dict[str, Any]:
        """Word attributions towards the predicted label (training/ml/explain.py), in float32 without autocast."""
        if self.task != TASK_CLASSIFICATION:
            raise ValueError(ERROR_WRONG_TASK.format(task=self.task, method="logprobs"))
        return explain_classification(
            self.model, self.tokenizer, text, labels=self.labels, max_length=self.max_length, device=self.device,
            steps=steps, max_steps=max_steps,
        )

    def logprobs(self, prompt: str, response: str) -> dict[str, Any]:
        """Each token of `response` with its log-probability given `prompt` (training/ml/explain.py)."""
        if self.task == TASK_CLASSIFICATION:
            raise ValueError(ERROR_WRONG_TASK.format(task=self.task, method="explain"))
        with _autocast(self.device, self.bf16):
            return response_logprobs(
                self.model, self.tokenizer, prompt, response, max_length=self.max_length, device=self.device
            )
