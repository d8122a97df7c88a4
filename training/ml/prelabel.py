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
from typing import Any

import numpy as np
import torch
from scipy.special import softmax
from torch import nn
from transformers import PreTrainedTokenizerBase

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


def instructions(*, labels: Sequence[str], guidelines: str, shots: Sequence[Shot] = ()) -> str:
    """The part of the user turn every item shares: the task, the guidelines and the examples, ending where the
    item's text goes ("Text:"), so its tokens are computed once per run (`label_log_likelihoods`)."""
    parts = [f"Classify the text with exactly one of these labels: {', '.join(labels)}. Answer with the label only."]
    if guidelines.strip():
        parts.append(f"Guidelines:\n{_clip(guidelines, GUIDELINE_CHARS)}")
    for shot in shots:
        parts.append(f"Text: {_clip(shot.text, EXAMPLE_CHARS)}\nLabel: {shot.label}")
    parts.append("Text:")
    return "\n\n".join(parts)


def classification_prompt(text: str, *, labels: Sequence[str], guidelines: str, shots: Sequence[Shot] = ()) -> str:
    """The whole user turn for one item: the shared instructions, then the item's text."""
    return instructions(labels=labels, guidelines=guidelines, shots=shots) + item_text(text)


def item_text(text: str) -> str:
    return f" {_clip(text, TEXT_CHARS)}"


def _label_ids(tokenizer: PreTrainedTokenizerBase, labels: Sequence[str]) -> list[list[int]]:
    """Each label's tokens as the assistant would write them, then the end of the turn."""
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    return [list(tokenizer(label, add_special_tokens=False)["input_ids"]) + eos for label in labels]


def split_prompt_ids(tokenizer: PreTrainedTokenizerBase, shared: str, text: str) -> tuple[list[int], list[int]]:
    """(shared prefix ids, the item's ids) of the chat-formatted prompt `shared + text`, ending where the answer
    begins. The rendered prompt is cut right after `shared` and each side tokenized alone; the cut sits before a
    space, where byte-level and word-piece tokenizers split anyway, so the ids are those of the whole prompt."""
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": shared + text}], add_generation_prompt=True, tokenize=False
    )
    assert isinstance(rendered, str)  # tokenize=False renders one conversation to one string
    cut = rendered.index(shared) + len(shared)
    head = list(tokenizer(rendered[:cut], add_special_tokens=False)["input_ids"])
    tail = list(tokenizer(rendered[cut:], add_special_tokens=False)["input_ids"])
    return head, tail


@torch.no_grad()
def label_log_likelihoods(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    shared: str,
    device: torch.device,
    on_item: Callable[[int], None] | None = None,
) -> np.ndarray:
    """(len(texts) x len(labels)) summed log-probabilities of each label's tokens after each item's prompt.

    The shared instructions (guidelines, examples) are run once and their key/value cache kept; each item then
    costs its own tokens plus each label's few tokens, rolled back after every label (`_rewind`). On a
    CPU that is what makes SmolLM2 usable: a 300-token guideline prompt is not paid again for every item and label.
    """
    from transformers import DynamicCache

    if len(labels) < 2:
        raise ValueError(ERROR_NO_LABELS)
    model.eval()
    answers = _label_ids(tokenizer, labels)
    out = np.zeros((len(texts), len(labels)), dtype=np.float64)
    cache: DynamicCache | None = None
    prefix: list[int] = []
    for row, text in enumerate(texts):
        head, tail = split_prompt_ids(tokenizer, shared, item_text(text))
        if cache is None or head != prefix:  # the same for every item, unless a template puts the text first
            prefix, cache = head, DynamicCache()
            model(input_ids=torch.tensor([head], device=device), past_key_values=cache, use_cache=True)
        assert cache is not None
        _rewind(cache, len(prefix))
        logits = model(input_ids=torch.tensor([tail], device=device), past_key_values=cache, use_cache=True).logits
        first = torch.log_softmax(logits[0, -1].float(), dim=-1)  # the distribution of the answer's first token
        prompt_length = len(prefix) + len(tail)
        for index, answer in enumerate(answers):
            total = float(first[answer[0]])
            if len(answer) > 1:
                rest = model(
                    input_ids=torch.tensor([answer[:-1]], device=device), past_key_values=cache, use_cache=True
                ).logits
                log_probs = torch.log_softmax(rest[0].float(), dim=-1)
                total += float(log_probs[torch.arange(len(answer) - 1), torch.tensor(answer[1:])].sum())
                _rewind(cache, prompt_length)
            out[row, index] = total
        if on_item is not None:
            on_item(1)
    return out


def _rewind(cache: Any, length: int) -> None:
    """Drop the cache's entries after the first `length` tokens (transformers 5: `crop(-n)` removes n)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


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
