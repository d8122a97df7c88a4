"""Evaluating a model on examples: the same code for validation, the test split, baselines and benchmarks.

Classification: probabilities → accuracy, macro-F1, per-class figures, confusion matrix, calibration, loss.
Generation: the loss per response token (prompt masked, as in training) and greedy responses scored with
ROUGE-L and BLEU against the references. Baselines: majority class and a logistic-regression probe on frozen
base-model embeddings; for generation the caller evaluates the un-tuned base model with these same functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from training.ml.data import IGNORE_INDEX, Example, encode_causal_lm, make_collator, sorted_batches
from training.ml.metrics import (
    classification_metrics,
    generation_metrics,
    logistic_regression_baseline,
    majority_baseline,
)
from training.ml.modeling import embed_texts
from training.ml.predict import class_probabilities, generate_responses
from training.spec import TASK_CAUSAL_LM

SAMPLE_COUNT = 5  # generated responses kept in the metrics, for a reader to judge
PROBABILITY_FLOOR = 1e-12


def classification_report(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    *,
    labels: Sequence[str],
    max_length: int,
    batch_size: int,
    device: torch.device,
    bf16: bool = False,
) -> dict[str, Any]:
    """Classification metrics, with the mean negative log-likelihood of the true label as "loss"."""
    label2id = {label: index for index, label in enumerate(labels)}
    probabilities = class_probabilities(
        model,
        tokenizer,
        [e.source for e in examples],
        max_length=max_length,
        batch_size=batch_size,
        device=device,
        bf16=bf16,
    )
    y_true = np.array([label2id[e.target] for e in examples], dtype=int)
    picked = probabilities[np.arange(len(y_true)), y_true]
    loss = float(-np.log(np.clip(picked, PROBABILITY_FLOOR, 1.0)).mean()) if len(y_true) else 0.0
    return classification_metrics(y_true, probabilities, labels, loss=loss)


@torch.no_grad()
def causal_lm_loss(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    features: Sequence[dict[str, Any]],
    *,
    batch_size: int,
    device: torch.device,
    bf16: bool = False,
) -> float:
    """Mean loss per response token over all examples (not a mean of batch means)."""
    model.eval()
    collator = make_collator(tokenizer, task=TASK_CAUSAL_LM)
    total, tokens = 0.0, 0
    for indices in sorted_batches([len(f["input_ids"]) for f in features], batch_size):
        batch = collator([features[i] for i in indices]).to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        counted = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
        total += float(loss) * counted
        tokens += counted
    return total / max(tokens, 1)


def generation_report(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    *,
    max_length: int,
    max_new_tokens: int,
    batch_size: int,
    device: torch.device,
    bf16: bool = False,
) -> dict[str, Any]:
    """Loss and perplexity on the references, ROUGE-L and BLEU of greedy responses, and a few samples."""
    features = encode_causal_lm(examples, tokenizer, max_length=max_length)
    loss = causal_lm_loss(model, tokenizer, features, batch_size=batch_size, device=device, bf16=bf16)
    responses = generate_responses(
        model,
        tokenizer,
        [e.source for e in examples],
        max_length=max_length,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        device=device,
        bf16=bf16,
    )
    metrics = generation_metrics(responses, [e.target for e in examples], loss=loss)
    metrics["samples"] = [
        {"prompt": e.source, "reference": e.target, "response": r}
        for e, r in zip(examples[:SAMPLE_COUNT], responses[:SAMPLE_COUNT], strict=False)
    ]
    return metrics


def classification_baselines(
    model_dir: Path,
    train: Sequence[Example],
    test: Sequence[Example],
    *,
    labels: Sequence[str],
    max_length: int,
    device: torch.device,
    seed: int,
) -> dict[str, Any]:
    """What a fine-tuned classifier has to beat: the majority class and a linear probe on frozen embeddings."""
    label2id = {label: index for index, label in enumerate(labels)}
    train_y = [label2id[e.target] for e in train]
    test_y = [label2id[e.target] for e in test]

    def embed(examples: Sequence[Example]) -> np.ndarray:
        return embed_texts(model_dir, [e.source for e in examples], max_length=max_length, device=device)

    return {
        "majority": majority_baseline(train_y, test_y, labels),
        "logreg_embeddings": logistic_regression_baseline(
            embed(train), train_y, embed(test), test_y, labels, seed=seed
        ),
    }
