"""Why a trained model said what it said: word attributions for a classification, token log-probabilities for a
generated response. No Django here; training/runs/serving.py calls it inside the explanation job.

Classification uses integrated gradients (Sundararajan et al., 2017) over the input embeddings: the straight path
from a baseline (every content token's embedding replaced by the padding token's; special tokens and positions
kept) to the real input, `steps` midpoints, gradients of the predicted class's log-odds (log p/(1−p), which
unlike p does not saturate for confident predictions). Per token, the attribution is (x − baseline) · mean
gradient summed over the embedding; by IG's completeness axiom the token attributions add up to
log-odds(x) − log-odds(baseline), and `delta` records how far the Riemann sum is from that, so a reader
can tell a faithful explanation from a numerically poor one. A model whose output turns sharply along the path
needs more steps: they double from IG_STEPS until |delta| is within tolerance (or IG_MAX_STEPS is reached, and
the result says it did not converge). Word pieces are merged back into the words the
tokenizer split the text into (their attributions summed, which keeps completeness), with character offsets into
the original text so the page highlights the text exactly as written.

We do not use captum: its LayerIntegratedGradients would do the same over the embedding layer, but the method is a
few dozen lines of torch here, we need the word merge and the truncation report around it anyway, and the shared
environment stays one dependency smaller.

Generation: one forward pass over the chat-formatted prompt plus the stored response gives each response token's
log-probability under the model (what the model thought of its own words, token by token).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from training.ml.data import chat_prompt_ids
from training.ml.modeling import hf_model
from training.spec import EXPLAIN_INTEGRATED_GRADIENTS, EXPLAIN_RESPONSE_LOGPROBS

METHOD_IG = EXPLAIN_INTEGRATED_GRADIENTS
METHOD_LOGPROBS = EXPLAIN_RESPONSE_LOGPROBS
IG_STEPS = 32
IG_MAX_STEPS = 512
IG_BATCH = 16
# Steps double from IG_STEPS until |delta| is within this (absolute + relative to the log-odds gap) or IG_MAX_STEPS.
IG_TOLERANCE_ABS = 0.05
IG_TOLERANCE_REL = 0.05
# A generated response longer than this many tokens is scored up to here (the rest is reported as cut).
MAX_RESPONSE_TOKENS = 1024

ERROR_NOT_FAST = "explanations need a fast tokenizer (one that reports character offsets); {name} is not one"
ERROR_NO_EMBEDDINGS = "{type} has no get_input_embeddings(): integrated gradients need its embedding layer"
ERROR_EMPTY = "there is nothing to explain: the text has no tokens"


@dataclass(frozen=True)
class Segment:
    """A stretch of the explained text: a word with its score, or the gap between words (score None)."""

    start: int
    end: int
    score: float | None

    def as_json(self, text: str) -> dict[str, Any]:
        return {"text": text[self.start : self.end], "score": self.score}


def _require_fast(tokenizer: PreTrainedTokenizerBase) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(ERROR_NOT_FAST.format(name=type(tokenizer).__name__))


def merge_words(
    offsets: Sequence[tuple[int, int]], word_ids: Sequence[int | None], scores: Sequence[float]
) -> list[tuple[int, int, float]]:
    """Tokens → words: consecutive tokens of the same word id become one (start, end, summed score).

    Special tokens (word id None, or an empty character span) are left out; their attribution is zero by
    construction (the baseline keeps them).
    """
    words: list[tuple[int, int, float]] = []
    last_word: int | None = None
    for (start, end), word, score in zip(offsets, word_ids, scores, strict=True):
        if word is None or end <= start:
            continue
        if words and word == last_word:
            first, _, total = words[-1]
            words[-1] = (first, end, total + score)
        else:
            words.append((start, end, score))
        last_word = word
    return words


def segments(text_length: int, words: Sequence[tuple[int, int, float]], *, upto: int) -> list[Segment]:
    """The text up to `upto` as alternating gaps and scored words, so concatenating their texts gives it back."""
    out: list[Segment] = []
    cursor = 0
    for start, end, score in words:
        if start > cursor:
            out.append(Segment(cursor, start, None))
        out.append(Segment(start, end, score))
        cursor = end
    if upto > cursor:
        out.append(Segment(cursor, min(upto, text_length), None))
    return out


def log_odds(logits: torch.Tensor, target: int) -> torch.Tensor:
    """log(p / (1 − p)) of class `target` per row: unlike p itself it does not flatten out near 0 and 1, so the
    words of a confident prediction still get their share."""
    others = torch.cat([logits[:, :target], logits[:, target + 1 :]], dim=1)
    return logits[:, target] - torch.logsumexp(others, dim=1)


def _target_log_odds(model: nn.Module, embeds: torch.Tensor, extra: dict[str, torch.Tensor], target: int) -> Any:
    return log_odds(model(inputs_embeds=embeds, **extra).logits.float(), target)


def _input_embeddings(model: nn.Module) -> nn.Module:
    """The token embedding layer of a Hugging Face model, bare or through PEFT (which forwards the call)."""
    getter = getattr(model, "get_input_embeddings", None)
    if not callable(getter):
        raise TypeError(ERROR_NO_EMBEDDINGS.format(type=type(model).__name__))
    return cast(nn.Module, getter())


def integrated_gradients(
    model: nn.Module,
    input_ids: torch.Tensor,
    *,
    extra: dict[str, torch.Tensor],
    baseline_ids: torch.Tensor,
    target: int | None = None,
    steps: int = IG_STEPS,
    batch: int = IG_BATCH,
) -> dict[str, Any]:
    """IG attributions of one sequence (`input_ids` of shape [1, n]) towards class `target` (default: predicted).

    Returns per-token `attributions` (list of n floats), `target`, `f_input`, `f_baseline` (the target's log-odds
    at the input and at the baseline), `delta` = sum(attributions) − (f_input − f_baseline) and the input's class
    `probabilities`.
    """
    model.eval()
    embedding = _input_embeddings(model)
    with torch.no_grad():
        x = embedding(input_ids).float()
        base = embedding(baseline_ids).float()
        logits = model(input_ids=input_ids, **extra).logits.float()
        probabilities = torch.softmax(logits, dim=-1)[0]
    if target is None:
        target = int(probabilities.argmax())
    total_grad = torch.zeros_like(x)
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps  # midpoint rule
    for start in range(0, steps, batch):
        chunk = alphas[start : start + batch].to(x.device).view(-1, 1, 1)
        path = (base + chunk * (x - base)).detach().requires_grad_(True)
        repeated = {key: value.expand(len(chunk), *value.shape[1:]) for key, value in extra.items()}
        with torch.enable_grad():
            out = _target_log_odds(model, path, repeated, target)
            (grad,) = torch.autograd.grad(out.sum(), path)
        total_grad += grad.sum(dim=0, keepdim=True)
    attributions = ((x - base) * total_grad / steps).sum(dim=-1)[0]
    with torch.no_grad():
        f_baseline = float(_target_log_odds(model, base, extra, target)[0])
    f_input = float(log_odds(logits, target)[0])
    values = [float(value) for value in attributions.cpu()]
    return {
        "attributions": values,
        "target": target,
        "f_input": f_input,
        "f_baseline": f_baseline,
        "delta": sum(values) - (f_input - f_baseline),
        "probabilities": [float(p) for p in probabilities.cpu()],
    }


def explain_classification(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    text: str,
    *,
    labels: Sequence[str],
    max_length: int,
    device: torch.device,
    steps: int = IG_STEPS,
    max_steps: int = IG_MAX_STEPS,
) -> dict[str, Any]:
    """Word attributions of `text` towards the predicted label, as JSON for the explanation page and API."""
    _require_fast(tokenizer)
    encoded = tokenizer(
        text, truncation=True, max_length=max_length, return_offsets_mapping=True, return_tensors="pt"
    )
    offsets = [(int(start), int(end)) for start, end in encoded.pop("offset_mapping")[0].tolist()]
    word_ids = encoded.word_ids(0)
    input_ids = encoded.pop("input_ids").to(device)
    extra = {key: value.to(device) for key, value in encoded.items()}
    content = torch.tensor([w is not None and e > s for w, (s, e) in zip(word_ids, offsets, strict=True)])
    if not bool(content.any()):
        raise ValueError(ERROR_EMPTY)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.unk_token_id
    baseline_ids = torch.where(content.to(device), torch.full_like(input_ids, int(pad_id or 0)), input_ids)
    while True:
        ig = integrated_gradients(model, input_ids, extra=extra, baseline_ids=baseline_ids, steps=steps)
        tolerance = IG_TOLERANCE_ABS + IG_TOLERANCE_REL * abs(ig["f_input"] - ig["f_baseline"])
        converged = abs(ig["delta"]) <= tolerance
        if converged or steps * 2 > max_steps:
            break
        steps *= 2
    explained = max(end for (_, end), keep in zip(offsets, content.tolist(), strict=True) if keep)
    words = merge_words(offsets, word_ids, ig["attributions"])
    total_tokens = len(tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])
    return {
        "method": METHOD_IG,
        "label": labels[ig["target"]],
        "probability": ig["probabilities"][ig["target"]],
        "probabilities": dict(zip(labels, ig["probabilities"], strict=True)),
        "baseline": "padding token",
        "log_odds": ig["f_input"],
        "baseline_log_odds": ig["f_baseline"],
        "steps": steps,
        "delta": ig["delta"],
        "tolerance": tolerance,
        "converged": converged,
        "attribution_sum": sum(ig["attributions"]),
        "segments": [segment.as_json(text) for segment in segments(len(text), words, upto=explained)],
        "explained_chars": explained,
        "text_chars": len(text),
        "tokens_used": int(input_ids.shape[1]),
        "tokens_total": total_tokens,
        "truncated": bool(text[explained:].strip()),
        "max_length": max_length,
    }


@torch.no_grad()
def response_logprobs(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    response: str,
    *,
    max_length: int,
    device: torch.device,
) -> dict[str, Any]:
    """Each token of `response` with its log-probability given the chat-formatted `prompt` and the tokens before
    it; the prompt keeps its last `max_length` tokens, as it did when the response was generated."""
    _require_fast(tokenizer)
    model.eval()
    prompt_ids = chat_prompt_ids(tokenizer, prompt)
    prompt_cut = max(len(prompt_ids) - max_length, 0)
    prompt_ids = prompt_ids[prompt_cut:]
    encoded = tokenizer(response, add_special_tokens=False, return_offsets_mapping=True)
    response_ids = list(encoded["input_ids"])
    offsets = [tuple(pair) for pair in encoded["offset_mapping"]]
    limit = MAX_RESPONSE_TOKENS
    positions = getattr(hf_model(model).config, "max_position_embeddings", None)
    if isinstance(positions, int):
        limit = min(limit, max(positions - len(prompt_ids), 0))
    truncated = len(response_ids) > limit
    response_ids, offsets = response_ids[:limit], offsets[:limit]
    tokens: list[dict[str, Any]] = []
    if response_ids:
        ids = torch.tensor([prompt_ids + response_ids], device=device)
        logits = model(input_ids=ids).logits.float()[0]
        # The token at position i is predicted from position i − 1.
        predicted = torch.log_softmax(logits[len(prompt_ids) - 1 : -1], dim=-1)
        chosen = predicted.gather(1, torch.tensor(response_ids, device=device).unsqueeze(1)).squeeze(1)
        previous = 0
        for index, ((start, end), value) in enumerate(zip(offsets, chosen.tolist(), strict=True)):
            # Byte-level tokenizers give a token's leading space to the token; keep the text between tokens too.
            start = previous if index else 0
            tokens.append({"text": response[start:end], "logprob": float(value), "p": math.exp(float(value))})
            previous = end
    explained = offsets[-1][1] if offsets else 0
    logprobs = [token["logprob"] for token in tokens]
    mean = sum(logprobs) / len(logprobs) if logprobs else None
    return {
        "method": METHOD_LOGPROBS,
        "tokens": tokens,
        "sum_logprob": sum(logprobs),
        "mean_logprob": mean,
        "perplexity": math.exp(-mean) if mean is not None else None,
        "prompt_tokens_cut": prompt_cut,
        "explained_chars": explained,
        "text_chars": len(response),
        "tokens_used": len(response_ids),
        "truncated": truncated,
        "max_length": max_length,
    }
