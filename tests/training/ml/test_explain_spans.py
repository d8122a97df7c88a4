"""Span explanations on a trained tiny BERT token classifier: one attribution per predicted span, completeness per
span, the spans those the model predicts, and words mapped to the right character offsets in Unicode text."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from annotation.tasktypes import word_tokens
from tests.training.ml.test_spans import rows
from training.ml.explain import METHOD_SPAN_IG, explain_spans, tag_log_odds
from training.ml.spans import SpanRecipe, SpanTrainingConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# The training rows' shape (filler, name, "in", place, filler) with an emoji (one code point here, two UTF-16 units
# in a browser) as the first filler and "zoé" written as "e" + a combining accent (two code points) as the last.
TEXT = "😀 alice in paris zoe\u0301"


@pytest.fixture(scope="module")
def trained(tiny_bert) -> SpanRecipe:
    config = SpanTrainingConfig(
        base_model_dir=str(tiny_bert), labels=("PER", "LOC"), epochs=30, learning_rate=1e-2, seed=0
    )
    recipe = SpanRecipe(config)
    recipe.setup()
    recipe.train(rows(64, seed=1))
    return recipe


def offsets_of(segments: list[dict]) -> list[tuple[int, int, float | None]]:
    out, cursor = [], 0
    for segment in segments:
        out.append((cursor, cursor + len(segment["text"]), segment["score"]))
        cursor += len(segment["text"])
    return out


@pytest.mark.slow
def test_each_predicted_span_is_explained_and_its_attributions_add_up(trained):
    result = trained.explain(TEXT)
    predicted = trained.predict([TEXT])[0]["spans"]
    assert result["method"] == METHOD_SPAN_IG
    assert [(s["start"], s["end"], s["label"]) for s in result["spans"]] == [
        (s["start"], s["end"], s["label"]) for s in predicted
    ]
    assert ("alice", "PER") in {(s["text"], s["label"]) for s in result["spans"]}
    for span in result["spans"]:
        assert span["text"] == TEXT[span["start"] : span["end"]]
        assert span["tags"][0] in (f"B-{span['label']}", f"I-{span['label']}") and 0 < span["probability"] <= 1
        # Completeness (IG): the words' attributions add up to how far the text moved the span's score.
        change = span["score"] - span["baseline_score"]
        assert span["attribution_sum"] == pytest.approx(change + span["delta"], abs=1e-4)
        assert span["converged"] and abs(span["delta"]) <= span["tolerance"] <= 0.05 + 0.05 * abs(change)
        words = [(TEXT[a:b], score) for a, b, score in offsets_of(span["segments"]) if score is not None]
        assert sum(score for _, score in words) == pytest.approx(span["attribution_sum"], abs=1e-4)
    assert result["converged"] and not result["truncated"]


@pytest.mark.slow
def test_attributed_words_sit_at_their_character_offsets_in_unicode_text(trained):
    result = trained.explain(TEXT)
    assert result["explained_chars"] == len(TEXT) and result["spans"]
    for span in result["spans"]:
        assert "".join(segment["text"] for segment in span["segments"]) == TEXT
        scored = [(a, b) for a, b, score in offsets_of(span["segments"]) if score is not None]
        # The annotators' words, in code points: the emoji is one character, the accent stays with its "e".
        assert scored == word_tokens(TEXT) == [(0, 1), (2, 7), (8, 10), (11, 16), (17, 21)]
    alice = next(s for s in result["spans"] if s["text"] == "alice")
    assert (alice["start"], alice["end"]) == (2, 7)


@pytest.mark.slow
def test_the_span_score_is_the_sum_of_its_tags_log_odds(trained):
    """What the attributions explain, checked against the model's own probabilities."""
    result = trained.explain(TEXT)
    span = next(s for s in result["spans"] if s["text"] == "alice")
    encoded = trained.tokenizer(TEXT, return_tensors="pt", return_offsets_mapping=True)
    offsets = encoded.pop("offset_mapping")[0].tolist()
    position = next(j for j, (a, b) in enumerate(offsets) if a == span["start"])
    with torch.no_grad():
        logits = trained.model(**encoded).logits.float()
    probabilities = torch.softmax(logits, dim=-1)[0, position]
    tag = trained.tags.index(span["tags"][0])
    p = float(probabilities[tag])
    assert span["score"] == pytest.approx(torch.log(torch.tensor(p / (1 - p))).item(), abs=1e-3)
    assert span["probability"] == pytest.approx(p, abs=1e-5)
    assert float(tag_log_odds(logits, [position], [tag])[0]) == pytest.approx(span["score"], abs=1e-4)


class NeverATag(nn.Module):
    """The trained tagger with the O tag's logit raised far above the rest: it finds no span anywhere."""

    def __init__(self, tagger: nn.Module) -> None:
        super().__init__()
        self.tagger = tagger

    def get_input_embeddings(self) -> nn.Module:
        return self.tagger.get_input_embeddings()

    def forward(self, **inputs):
        logits = self.tagger(**inputs).logits.clone()
        logits[..., 0] += 100.0
        return SimpleNamespace(logits=logits)


def test_a_text_with_no_spans_has_nothing_to_explain(trained):
    result = explain_spans(
        NeverATag(trained.model), trained.tokenizer, TEXT, tag_names=trained.tags, max_length=32,
        device=torch.device("cpu"),
    )
    assert result["spans"] == [] and result["converged"] and result["explained_chars"] == len(TEXT)
