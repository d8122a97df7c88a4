"""Reads for explanations: the cache key of an output, its explanation, and the page's view of the result.

The view turns the stored JSON (training/ml/explain.py) into what the template draws: each word with a colour
strength scaled to the strongest word of that text, its direction (towards or against the predicted label), a
tooltip with its value, and the words that weighed most, as a table (colour is never the only carrier). A span
run's view holds one such view per predicted span, its own words marked, under the text with all spans marked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from django.http import Http404

from annotation.models import Project
from annotation.permissions import MANAGE
from training.models import Explanation, ExplanationStatus, ModelOutput, TrainingRun
from training.spec import TASK_CLASSIFICATION, TASK_SPANS

OUTPUT_NOT_FOUND = "No such output of this run."


EXPLANATIONS_QUEUE = "quality"  # short jobs that must never wait behind a training run (docs/OPERATIONS.md)


# The strongest word is drawn at this opacity of its colour: dark text stays readable on it (contrast > 7:1).
MAX_ALPHA = 0.6


TOP_WORDS = 8


# An attribution drawn weaker than this is not underlined: the underline marks the words that count.
STRONG_ALPHA = 0.15


# A generated token below this probability is listed among the model's least expected tokens.
UNLIKELY_TOKEN_P = 0.2


def explanation_job_id(explanation_id: int) -> str:
    return f"explain-{explanation_id}"


def explained_text(output: ModelOutput) -> tuple[str, str | None]:
    """(item text, response) for a generation; (item text, None) for a classification or spans (the text is what
    is explained, and what the cache key hashes)."""
    if output.run.task in (TASK_CLASSIFICATION, TASK_SPANS):
        return output.item.text, None
    return output.item.text, str((output.value or {}).get("response", ""))


def explanation_key(output: ModelOutput) -> str:
    text, response = explained_text(output)
    payload = text if response is None else f"{text}\x00{response}"
    return hashlib.sha256(payload.encode()).hexdigest()


def output_get(*, run: TrainingRun, output_id: int) -> ModelOutput:
    output = ModelOutput.objects.filter(run=run, pk=output_id).select_related("item", "run").first()
    if output is None:
        raise Http404(OUTPUT_NOT_FOUND)
    output.run = run
    return output


def explanation_for_output(*, output: ModelOutput) -> Explanation | None:
    return Explanation.objects.filter(run_id=output.run_id, text_hash=explanation_key(output)).first()


def probability_shown(*, project: Project, role: str) -> bool:
    """Owners always see the model's probability; reviewers when the project shows raters its confidence."""
    return role in MANAGE or project.show_model_confidence


@dataclass
class ShownPiece:
    text: str
    value: float | None = None
    direction: str = ""  # "for" / "against" (attributions), "" for gaps
    alpha: float = 0.0
    title: str = ""
    in_span: bool = False  # a word of the span being explained (spans: drawn outlined)
    label: str = ""  # spans: the label of a marked stretch of the text

    @property
    def strong(self) -> bool:
        return self.alpha >= STRONG_ALPHA

    @property
    def visible(self) -> str:
        """The text with its spaces and line breaks shown (a token table cell of " " would look empty)."""
        return self.text.replace(" ", "␣").replace("\n", "⏎")


@dataclass
class ExplanationView:
    pieces: list[ShownPiece] = field(default_factory=list)
    top: list[ShownPiece] = field(default_factory=list)
    rest: str = ""  # the part of the text the model never saw (cut at its maximum length)
    result: dict[str, Any] = field(default_factory=dict)
    spans: list[ExplanationView] = field(default_factory=list)  # spans: one attribution view per predicted span

    @property
    def change(self) -> float | None:
        """How far the words moved the predicted label's log-odds (a span: its score) from the baseline's; the
        attributions add up to it."""
        for value, baseline in (("log_odds", "baseline_log_odds"), ("score", "baseline_score")):
            if value in self.result:
                return float(self.result[value]) - float(self.result[baseline])
        return None


def _attribution_view(result: dict[str, Any], text: str, target: str) -> ExplanationView:
    """Words coloured by attribution towards `target` (a label, or a span's label and words)."""
    segments = result.get("segments") or []
    strongest = max((abs(s["score"]) for s in segments if s.get("score") is not None), default=0.0) or 1.0
    pieces = []
    for segment in segments:
        score = segment.get("score")
        if score is None:
            pieces.append(ShownPiece(text=segment["text"]))
            continue
        direction = "for" if score >= 0 else "against"
        pieces.append(
            ShownPiece(
                text=segment["text"],
                value=score,
                direction=direction,
                alpha=round(MAX_ALPHA * abs(score) / strongest, 3),
                title=f"{score:+.3f} log-odds {'towards' if score >= 0 else 'against'} {target}",
            )
        )
    top = sorted((p for p in pieces if p.value is not None), key=lambda p: -abs(p.value or 0.0))[:TOP_WORDS]
    return ExplanationView(pieces=pieces, top=top, rest=text[int(result.get("explained_chars", len(text))):])


def _marked_text(text: str, spans: list[dict[str, Any]]) -> list[ShownPiece]:
    """The text as plain stretches and the predicted spans, each with its label."""
    out, cursor = [], 0
    for span in sorted(spans, key=lambda s: s["start"]):
        if span["start"] > cursor:
            out.append(ShownPiece(text=text[cursor : span["start"]]))
        out.append(ShownPiece(text=text[span["start"] : span["end"]], label=span["label"], in_span=True))
        cursor = span["end"]
    if cursor < len(text):
        out.append(ShownPiece(text=text[cursor:]))
    return out


def _span_view(result: dict[str, Any], text: str) -> ExplanationView:
    """One attribution view per predicted span (its own words outlined), under the text with every span marked."""
    views = []
    for span in result.get("spans") or []:
        view = _attribution_view(
            {**span, "explained_chars": result.get("explained_chars", len(text))},
            text,
            f"{span['label']} for “{span['text']}”",
        )
        start = 0
        for piece in view.pieces:
            end = start + len(piece.text)
            piece.in_span = piece.value is not None and span["start"] <= start and end <= span["end"]
            start = end
        view.result = span
        views.append(view)
    return ExplanationView(
        pieces=_marked_text(text, result.get("spans") or []),
        rest=text[int(result.get("explained_chars", len(text))):],
        spans=views,
    )


def _logprob_view(result: dict[str, Any], response: str) -> ExplanationView:
    pieces = [
        ShownPiece(
            text=token["text"],
            value=token["p"],
            direction="unlikely" if token["p"] < UNLIKELY_TOKEN_P else "likely",
            alpha=round(MAX_ALPHA * (1.0 - token["p"]), 3),
            title=f"p = {token['p']:.3f} · log p = {token['logprob']:.3f}",
        )
        for token in result.get("tokens") or []
    ]
    top = sorted(pieces, key=lambda p: p.value or 0.0)[:TOP_WORDS]
    return ExplanationView(pieces=pieces, top=top, rest=response[int(result.get("explained_chars", 0)):])


def explanation_view(*, explanation: Explanation | None, output: ModelOutput) -> ExplanationView | None:
    """What the page draws for a finished explanation (None until it has succeeded)."""
    if explanation is None or explanation.status != ExplanationStatus.SUCCEEDED:
        return None
    text, response = explained_text(output)
    result = explanation.result
    if output.run.task == TASK_SPANS:
        view = _span_view(result, text)
    elif response is None:
        view = _attribution_view(result, text, str(result.get("label", "")))
    else:
        view = _logprob_view(result, response)
    view.result = result
    return view
