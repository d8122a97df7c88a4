"""Why a trained model said what it said: word attributions for a classification and for each span a token
classifier found, token log-probabilities for a generated response. No Django here; training/runs/serving.py
calls it inside the explanation job.

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

Spans: the same integrated gradients, once per predicted span, of the span's score: the sum of the log-odds of the
tags the model gave its words' first tokens (B-LABEL, then I-LABEL), the tokens the span recipe reads its
predictions from. Completeness then says the word attributions add up to how far the text moved that score from the
padding text's.

Generation: one forward pass over the chat-formatted prompt plus the stored response gives each response token's
log-probability under the model (what the model thought of its own words, token by token).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from training.ml.data import chat_prompt_ids
from training.ml.modeling import hf_model
from training.ml.token_labels import OUTSIDE, spans_from_token_tags, word_end, word_starts
from training.spec import EXPLAIN_INTEGRATED_GRADIENTS, EXPLAIN_RESPONSE_LOGPROBS, EXPLAIN_SPAN_INTEGRATED_GRADIENTS

METHOD_IG = EXPLAIN_INTEGRATED_GRADIENTS
METHOD_LOGPROBS = EXPLAIN_RESPONSE_LOGPROBS
METHOD_SPAN_IG = EXPLAIN_SPAN_INTEGRATED_GRADIENTS
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
    offsets: Sequence[tuple[int, int]],
    word_ids: Sequence[int | None],
    scores: Sequence[float],
    text: str | None = None,
) -> list[tuple[int, int, float]]:
    """Tokens → words: consecutive tokens of the same word id become one (start, end, summed score).

    Special tokens (word id None, or an empty character span) are left out; their attribution is zero by
    construction (the baseline keeps them). Given the `text`, a word ends after any combining mark that follows it
    (a tokenizer that strips accents leaves them out of its offsets), so a page never splits a letter from its accent.
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
    if text is None:
        return words
    return [(start, word_end(text, end), score) for start, end, score in words]


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


def _attributions(
    model: nn.Module,
    x: torch.Tensor,
    base: torch.Tensor,
    extra: dict[str, torch.Tensor],
    objective: Callable[[torch.Tensor], torch.Tensor],
    *,
    targets: int,
    steps: int,
    batch: int,
) -> torch.Tensor:
    """IG attributions ([targets, n]) of one sequence's embeddings `x` ([1, n, d]) against `base`, for each column
    of `objective(logits)` ([batch, targets]): one forward pass per chunk of the path serves every target."""
    total_grad = torch.zeros((targets, *x.shape[1:]), device=x.device)
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps  # midpoint rule
    for start in range(0, steps, batch):
        chunk = alphas[start : start + batch].to(x.device).view(-1, 1, 1)
        path = (base + chunk * (x - base)).detach().requires_grad_(True)
        repeated = {key: value.expand(len(chunk), *value.shape[1:]) for key, value in extra.items()}
        with torch.enable_grad():
            out = objective(model(inputs_embeds=path, **repeated).logits.float())
            for index in range(targets):
                (grad,) = torch.autograd.grad(out[:, index].sum(), path, retain_graph=index < targets - 1)
                total_grad[index] += grad.sum(dim=0)
    return ((x[0] - base[0]) * total_grad / steps).sum(dim=-1)


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
    chosen = target
    attributions = _attributions(
        model, x, base, extra, lambda out: log_odds(out, chosen).unsqueeze(1), targets=1, steps=steps, batch=batch
    )[0]
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
    encoded = _Encoded.of(tokenizer, text, max_length=max_length, device=device)
    input_ids, extra, baseline_ids, offsets, word_ids = (
        encoded.input_ids, encoded.extra, encoded.baseline_ids, encoded.offsets, encoded.word_ids
    )
    while True:
        ig = integrated_gradients(model, input_ids, extra=extra, baseline_ids=baseline_ids, steps=steps)
        tolerance = IG_TOLERANCE_ABS + IG_TOLERANCE_REL * abs(ig["f_input"] - ig["f_baseline"])
        converged = abs(ig["delta"]) <= tolerance
        if converged or steps * 2 > max_steps:
            break
        steps *= 2
    explained = encoded.explained_chars
    words = merge_words(offsets, word_ids, ig["attributions"], text)
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
        **encoded.extent(tokenizer, text, max_length=max_length),
    }


@dataclass(frozen=True)
class _Encoded:
    """One text as the model reads it for integrated gradients: ids, the other inputs, the padding baseline (special
    tokens and positions kept), each token's character offsets and word id."""

    input_ids: torch.Tensor
    extra: dict[str, torch.Tensor]
    baseline_ids: torch.Tensor
    offsets: list[tuple[int, int]]
    word_ids: list[int | None]
    content: list[bool]
    text: str

    @classmethod
    def of(cls, tokenizer: PreTrainedTokenizerBase, text: str, *, max_length: int, device: torch.device) -> _Encoded:
        _require_fast(tokenizer)
        encoded = tokenizer(
            text, truncation=True, max_length=max_length, return_offsets_mapping=True, return_tensors="pt"
        )
        offsets = [(int(start), int(end)) for start, end in encoded.pop("offset_mapping")[0].tolist()]
        word_ids = list(encoded.word_ids(0))
        input_ids = encoded.pop("input_ids").to(device)
        extra = {key: value.to(device) for key, value in encoded.items()}
        content = [w is not None and e > s for w, (s, e) in zip(word_ids, offsets, strict=True)]
        if not any(content):
            raise ValueError(ERROR_EMPTY)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.unk_token_id
        mask = torch.tensor(content, device=device)
        baseline_ids = torch.where(mask, torch.full_like(input_ids, int(pad_id or 0)), input_ids)
        return cls(input_ids, extra, baseline_ids, offsets, word_ids, content, text)

    @property
    def explained_chars(self) -> int:
        """Where the last token the model read ends (the rest of its word included)."""
        last = max(end for (_, end), keep in zip(self.offsets, self.content, strict=True) if keep)
        return word_end(self.text, last)

    def extent(self, tokenizer: PreTrainedTokenizerBase, text: str, *, max_length: int) -> dict[str, Any]:
        """How much of the text the model saw (it cuts at `max_length` tokens)."""
        explained = self.explained_chars
        total_tokens = len(tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])
        return {
            "explained_chars": explained,
            "text_chars": len(text),
            "tokens_used": int(self.input_ids.shape[1]),
            "tokens_total": total_tokens,
            "truncated": bool(text[explained:].strip()),
            "max_length": max_length,
        }


def tag_log_odds(logits: torch.Tensor, positions: Sequence[int], tags: Sequence[int]) -> torch.Tensor:
    """A span's score per row of `logits` ([batch, n, tags]): the sum of its tags' log-odds over its tokens."""
    total = torch.zeros(logits.shape[0], device=logits.device)
    for position, tag in zip(positions, tags, strict=True):
        total = total + log_odds(logits[:, position, :], tag)
    return total


@dataclass(frozen=True)
class _PredictedSpan:
    start: int
    end: int
    label: str
    positions: list[int]  # the word-first tokens whose tags make the span
    tags: list[int]


def _predicted_spans(
    probabilities: torch.Tensor, encoded: _Encoded, text: str, tag_names: Sequence[str]
) -> list[_PredictedSpan]:
    """The spans the model predicts (read as the span recipe reads them: each word's first token, BIO) with the
    tokens that carry each one's tags."""
    best = probabilities.argmax(dim=-1).tolist()
    starts = word_starts(encoded.word_ids)
    tags = [tag_names[best[j]] if first else None for j, first in enumerate(starts)]
    out = []
    for span in spans_from_token_tags(tags, encoded.offsets, text):
        inside = [span["start"] <= start and end <= span["end"] for start, end in encoded.offsets]
        positions = [j for j, tag in enumerate(tags) if tag not in (None, OUTSIDE) and inside[j]]
        out.append(_PredictedSpan(span["start"], span["end"], span["label"], positions, [best[j] for j in positions]))
    return out


def explain_spans(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    text: str,
    *,
    tag_names: Sequence[str],
    max_length: int,
    device: torch.device,
    steps: int = IG_STEPS,
    max_steps: int = IG_MAX_STEPS,
) -> dict[str, Any]:
    """Word attributions of every span the token classifier predicts in `text`, as JSON for the page and API.

    Each span is explained on its own: integrated gradients (same baseline and path as a classification) of the
    span's score, the sum over its words' first tokens of the log-odds of the tag the model gave each (B-LABEL,
    then I-LABEL). Log-odds rather than log-probabilities for the classification's reason: they do not flatten out
    for a confident tag. One forward pass per point of the path serves all spans; the steps double until every
    span's completeness gap is within tolerance (or IG_MAX_STEPS), and each span says whether it got there.
    """
    model.eval()
    encoded = _Encoded.of(tokenizer, text, max_length=max_length, device=device)
    embedding = _input_embeddings(model)
    with torch.no_grad():
        x = embedding(encoded.input_ids).float()
        base = embedding(encoded.baseline_ids).float()
        logits = model(input_ids=encoded.input_ids, **encoded.extra).logits.float()
        probabilities = torch.softmax(logits, dim=-1)[0]
    spans = _predicted_spans(probabilities, encoded, text, tag_names)

    def objective(out: torch.Tensor) -> torch.Tensor:
        return torch.stack([tag_log_odds(out, span.positions, span.tags) for span in spans], dim=1)

    explained: list[dict[str, Any]] = []
    if spans:
        with torch.no_grad():
            f_input = objective(logits)[0].tolist()
            f_baseline = objective(model(inputs_embeds=base, **encoded.extra).logits.float())[0].tolist()
        gaps = [a - b for a, b in zip(f_input, f_baseline, strict=True)]
        tolerances = [IG_TOLERANCE_ABS + IG_TOLERANCE_REL * abs(gap) for gap in gaps]
        while True:
            attributions = _attributions(
                model, x, base, encoded.extra, objective, targets=len(spans), steps=steps, batch=IG_BATCH
            ).cpu()
            deltas = [float(row.sum()) - gap for row, gap in zip(attributions, gaps, strict=True)]
            if all(abs(d) <= t for d, t in zip(deltas, tolerances, strict=True)) or steps * 2 > max_steps:
                break
            steps *= 2
        upto = encoded.explained_chars
        for index, span in enumerate(spans):
            values = [float(value) for value in attributions[index]]
            words = merge_words(encoded.offsets, encoded.word_ids, values, text)
            explained.append(
                {
                    "start": span.start,
                    "end": span.end,
                    "label": span.label,
                    "text": text[span.start : span.end],
                    "tags": [tag_names[tag] for tag in span.tags],
                    "probability": float(
                        sum(float(probabilities[j, t]) for j, t in zip(span.positions, span.tags, strict=True))
                        / len(span.positions)
                    ),
                    "score": f_input[index],
                    "baseline_score": f_baseline[index],
                    "delta": deltas[index],
                    "tolerance": tolerances[index],
                    "converged": abs(deltas[index]) <= tolerances[index],
                    "attribution_sum": sum(values),
                    "segments": [segment.as_json(text) for segment in segments(len(text), words, upto=upto)],
                }
            )
    return {
        "method": METHOD_SPAN_IG,
        "target": "sum of the log-odds of the span's tags over its words' first tokens",
        "baseline": "padding token",
        "steps": steps,
        "converged": all(span["converged"] for span in explained),
        "spans": explained,
        **encoded.extent(tokenizer, text, max_length=max_length),
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
