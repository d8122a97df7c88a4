"""Pre-labelling with an untuned causal LM: constrained choice among the label names, or a draft response (no Django).

Classification is never free generation: each label is scored by the model's log-likelihood of its name (and the
end-of-turn token, so "spam" is not rewarded for being the start of "spammy") after one prompt, and the softmax of
those scores over the labels is the suggestion's distribution. It is fast (forward passes only, all labels of an
item in one batch) and always yields one of the project's labels. The prompt is the guidelines' text and the label
names (zero-shot), plus a few labelled examples (few-shot). Instruction projects get the model's greedy response.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import softmax
from torch import nn
from transformers import PreTrainedTokenizerBase

from training.ml.data import chat_prompt_ids

# Characters of the guidelines and of each example kept in a prompt: SmolLM2 reads 8k tokens, but every token
# is paid for once per label per item on a CPU, and a short prompt is what a 135M model follows best anyway.
GUIDELINE_CHARS = 1500
EXAMPLE_CHARS = 300
TEXT_CHARS = 1000

ERROR_NO_LABELS = "constrained choice needs at least two label names"


@dataclass(frozen=True)
class Shot:
    """One labelled example shown in a few-shot prompt."""

    text: str
    label: str


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def classification_prompt(text: str, *, labels: Sequence[str], guidelines: str, shots: Sequence[Shot] = ()) -> str:
    """The user turn: the task, the guidelines, the examples and the text, ending with the answer's format."""
    parts = [f"Classify the text with exactly one of these labels: {', '.join(labels)}."]
    if guidelines.strip():
        parts.append(f"Guidelines:\n{_clip(guidelines, GUIDELINE_CHARS)}")
    for shot in shots:
        parts.append(f"Text: {_clip(shot.text, EXAMPLE_CHARS)}\nLabel: {shot.label}")
    parts.append(f"Text: {_clip(text, TEXT_CHARS)}\nAnswer with the label only.")
    return "\n\n".join(parts)


def _label_ids(tokenizer: PreTrainedTokenizerBase, labels: Sequence[str]) -> list[list[int]]:
    """Each label's tokens as the assistant would write them, then the end of the turn."""
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    return [list(tokenizer(label, add_special_tokens=False)["input_ids"]) + eos for label in labels]


@torch.no_grad()
def label_log_likelihoods(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    labels: Sequence[str],
    *,
    max_length: int,
    device: torch.device,
    on_item: Callable[[int], None] | None = None,
) -> np.ndarray:
    """(len(prompts) x len(labels)) summed log-probabilities of each label's tokens after each prompt.

    One forward pass per prompt over a batch of len(labels) rows (prompt + label, right-padded); a prompt too long
    for `max_length` keeps its last tokens, so the label is always scored right after the question.
    """
    if len(labels) < 2:
        raise ValueError(ERROR_NO_LABELS)
    model.eval()
    answers = _label_ids(tokenizer, labels)
    longest = max(len(a) for a in answers)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = np.zeros((len(prompts), len(labels)), dtype=np.float64)
    for row, prompt in enumerate(prompts):
        prompt_ids = chat_prompt_ids(tokenizer, prompt)[-max(1, max_length - longest) :]
        sequences = [prompt_ids + answer for answer in answers]
        width = max(len(s) for s in sequences)
        input_ids = torch.tensor([s + [pad] * (width - len(s)) for s in sequences], device=device)
        attention = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences], device=device)
        logits = model(input_ids=input_ids, attention_mask=attention).logits.float()
        log_probs = torch.log_softmax(logits[:, :-1], dim=-1)
        start = len(prompt_ids)
        for index, answer in enumerate(answers):
            positions = torch.arange(start - 1, start - 1 + len(answer), device=device)
            targets = torch.tensor(answer, device=device)
            out[row, index] = float(log_probs[index, positions, targets].sum())
        if on_item is not None:
            on_item(1)
    return out


def choice_probabilities(log_likelihoods: np.ndarray) -> np.ndarray:
    """The labels' scores as a distribution over the labels (a softmax of summed log-probabilities)."""
    return softmax(log_likelihoods, axis=1) if log_likelihoods.size else log_likelihoods


def response_prompt(prompt: str, *, guidelines: str) -> str:
    """An instruction project's prompt for the untuned model: the guidelines first, when there are any."""
    if not guidelines.strip():
        return prompt
    return f"Follow these guidelines:\n{_clip(guidelines, GUIDELINE_CHARS)}\n\n{prompt}"


def figures(y_true: Sequence[int] | np.ndarray, probabilities: np.ndarray, label_count: int) -> dict[str, object]:
    """Accuracy and macro-F1 of the likeliest label, each with its 95 % bootstrap interval (metrics.py's)."""
    from training.ml.metrics import bootstrap_intervals, classification_statistics

    truth = np.asarray(y_true, dtype=int)
    predicted = probabilities.argmax(axis=1) if len(truth) else np.zeros(0, dtype=int)
    statistics = classification_statistics(truth, predicted, label_count)
    everyone = np.ones((1, len(truth)))
    out: dict[str, object] = {"n": len(truth)}
    intervals = bootstrap_intervals(statistics, len(truth))
    for name, statistic in statistics.items():
        out[name] = float(statistic(everyone)[0]) if len(truth) else None
        out[f"{name}_ci"] = [round(v, 4) for v in intervals.get(name, [])]
    return out


BASELINE_TRAIN_SHARE = 0.8  # of the labelled pool; the rest chooses the baselines' settings (validation)


def baseline_figures(
    pool_texts: Sequence[str],
    pool_y: np.ndarray,
    measured_texts: Sequence[str],
    y_true: np.ndarray,
    *,
    labels: Sequence[str],
    descriptions: dict[str, str],
    embed: Callable[[Sequence[str]], np.ndarray],
    seed: int,
) -> tuple[dict[str, dict[str, object]], dict[str, int]]:
    """The training page's baselines (baselines.fit_classification_baselines) fitted on a labelled pool, split
    train / validation, and scored on the measured items: ({name: figures}, the pool's split sizes)."""
    from training.ml import baselines

    order = np.random.default_rng(seed).permutation(len(pool_texts))
    cut = max(1, round(len(pool_texts) * BASELINE_TRAIN_SHARE))
    train_rows, validation_rows = order[:cut], order[cut:]
    train = baselines.Texts([pool_texts[i] for i in train_rows], embed)
    validation = baselines.Texts([pool_texts[i] for i in validation_rows], embed)
    fitted = baselines.fit_classification_baselines(
        train,
        pool_y[train_rows],
        validation,
        pool_y[validation_rows],
        labels=labels,
        descriptions=descriptions,
        embed=embed,
        seed=seed,
    )
    measured = baselines.Texts(list(measured_texts), embed)
    scored = {
        one.name: {**figures(y_true, one.predict(measured), len(labels)), "method": one.method} for one in fitted
    }
    return scored, {"train": len(train_rows), "validation": len(validation_rows)}
